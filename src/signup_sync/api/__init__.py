"""HTTP layer: routers, auth, error rendering.

The only package (with app.py) that imports FastAPI.
"""
