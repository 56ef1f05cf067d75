"""Repositories: keyword-only functions that take a session and return frozen records."""
