"""The naive setups the scenarios measure, each a gunicorn config (`--config python:lab.scenarios.naive.X`).

Like lab/peers, each is the lab's app and settings with one thing done the
usual wrong way, so the scenario's difference is that one thing.
"""
