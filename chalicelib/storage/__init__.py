"""The only package that talks to AWS: one repository per table, plus the key store."""
