"""The compiler's backend: from a Plan to a rendered, formatted, verified package."""
