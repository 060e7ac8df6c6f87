"""`nb2prod verify`: run the notebook and the package it became, and compare what each measured.

The notebook runs top to bottom in a fresh kernel (nbclient and ipykernel), in its own folder;
small probe cells read each metric the Plan names right after the cell that computes it. The
package trains with its own `train` module into an MLflow store. The two sets of metrics are
compared within a tolerance, and a mismatch is explained by what the Plan already knows
(unseeded randomness, hidden state) or said to have no known cause. Both sides start their
global random generators from one seed (seeds.py), so that an unseeded notebook can be compared
at all.
"""
