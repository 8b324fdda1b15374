"""Command-line tools of the checkout, run as ``python -m scripts.NAME`` from its root."""
