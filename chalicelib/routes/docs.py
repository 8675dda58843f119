"""``GET /docs``: the API reference, the OpenAPI document rendered by Swagger UI
(``chalicelib.web.api_docs``), and its assets under ``/docs/assets/``."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.errors import NotFound
from chalicelib.http import api_endpoint
from chalicelib.routes import ANY

bp = Blueprint(__name__)


@bp.route("/docs", methods=["GET"], content_types=ANY)
@api_endpoint
def docs_page() -> Response:
    from chalicelib.web import api_docs  # here, not at import: SPEC §9

    return Response(body=api_docs.page(), status_code=200, headers=api_docs.page_headers())


@bp.route("/docs/assets/{name}", methods=["GET"], content_types=ANY)
@api_endpoint
def docs_asset(name: str) -> Response:
    from chalicelib.web import api_docs

    found = api_docs.asset(name)
    if found is None:
        raise NotFound("No such asset")
    return Response(body=found.body, status_code=200, headers=api_docs.asset_headers(found))
