"""Tessera: wires blueprints, middleware and schedules together; nothing else."""

from chalice import Chalice

from chalicelib.http import error_middleware
from chalicelib.routes import wellknown

app = Chalice(app_name="tessera")
app.api.binary_types.append("application/x-www-form-urlencoded")
app.register_middleware(error_middleware, "http")
app.register_blueprint(wellknown.bp)
