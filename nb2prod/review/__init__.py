"""`nb2prod review`: the PR bot. It consumes lint results and a diff, nothing else.

The lint engine finds the findings; this package keeps those on lines the pull request
changed, writes one summary comment that it finds again and updates on every run, and
(optionally) inline review comments with suggestions where the fix is mechanical.
"""
