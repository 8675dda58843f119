"""Server-rendered web pages: layout, security headers, cookies, one page per module."""
