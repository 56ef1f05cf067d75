"""A sweep's stored runs turned into what the API and the pages show.

``loading`` reads a sweep's runs through the repositories into ``SweepData``
(``sweep_data``: configurations summarised over their seeds, with the edge,
scaling fit and diagnosis computed once on demand); ``cache`` keeps recent
ones per database; ``views`` shape them for the endpoints, ``export`` for the
CSV, and ``reports`` computes and stores the report of a finished sweep.
"""
