"""File-system plumbing every layer shares: atomic writers and the ownership of output folders."""
