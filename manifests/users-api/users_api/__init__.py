"""The users-api example: every pattern of the Runner feature seed in one manifest.

Plain Python callables; app.yaml wires them (routes, auth, caching, rate limits,
events, logging), prod.yaml moves them onto PostgreSQL and Redis.
"""
