"""modelkit's benchmarks: ``python -m bench [NAME...]`` runs them and prints ratios measured
against a baseline in the same run. Nothing here is asserted by the test suite."""
