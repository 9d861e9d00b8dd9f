"""Schemathesis against the service's own OpenAPI schema: no 5xx, responses match the schema.

The examples are bounded (FUZZ_EXAMPLES per operation, default 25) so the suite stays quick;
set FUZZ_EXAMPLES=500 for a longer run.
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.main import create_app
from app.settings import Settings
from tests.conftest import SHIPPED_BUNDLE

app = create_app(Settings(model_dir=SHIPPED_BUNDLE), load_in_background=False)
app.state.service.load()  # the lifespan does not run under schemathesis's ASGI transport
schema = schemathesis.openapi.from_asgi("/openapi.json", app)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_schema(case):
    # Schema-valid is not image-valid: random bytes in `file` are rightly refused (400/415), so
    # the "valid data must be accepted" check does not apply; every other default check does.
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    assert response.status_code < 500
