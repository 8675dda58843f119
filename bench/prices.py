"""AWS list prices of the cost model, in one place.

These are public **list prices** for US East (N. Virginia), on demand, first
pricing tier, no free tier, as published on the AWS pricing pages **as of
PRICES_AS_OF** (the DynamoDB figures are those after the on-demand price cut of
2024-11-01). They were not re-read on the day of the run: check the pricing
pages before quoting the modeled costs.
"""

from __future__ import annotations

PRICES_AS_OF = "2024-11-14"
REGION = "us-east-1"

# AWS Lambda: duration per GB-second (billed per 1 ms) and requests.
LAMBDA_PER_GB_SECOND = {"arm64": 0.0000133334, "x86_64": 0.0000166667}
LAMBDA_PER_MILLION_REQUESTS = 0.20

# Amazon API Gateway REST API, first 333 million requests a month.
API_GATEWAY_REST_PER_MILLION = 3.50

# Amazon DynamoDB on-demand (standard table class).
DYNAMODB_PER_MILLION_RRU = 0.125
DYNAMODB_PER_MILLION_WRU = 0.625


def as_dict() -> dict[str, object]:
    return {"as_of": PRICES_AS_OF, "region": REGION, "kind": "public list prices",
            "lambda_per_gb_second": LAMBDA_PER_GB_SECOND,
            "lambda_per_million_requests": LAMBDA_PER_MILLION_REQUESTS,
            "api_gateway_rest_per_million": API_GATEWAY_REST_PER_MILLION,
            "dynamodb_per_million_rru": DYNAMODB_PER_MILLION_RRU,
            "dynamodb_per_million_wru": DYNAMODB_PER_MILLION_WRU}
