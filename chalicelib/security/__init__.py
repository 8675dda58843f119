"""Secrets, hashes and signatures: no AWS, no HTTP."""
