"""The compiler's frontend: from a notebook file to a Plan."""
