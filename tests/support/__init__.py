"""Test support code: data builders, a recording SMTP server and its fixtures."""
