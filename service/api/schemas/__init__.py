"""Request and response bodies, one module per resource (they document the API in OpenAPI and
schemathesis checks every response against them).

Where the domain's frozen record is already the right shape (a run, a curve
point, a worker), routes return the record itself: FastAPI documents and
serialises stdlib dataclasses, so the fields are written once.
"""
