"""`lab faults`: look at or change the app's injected faults (app/faults.py) from the shell.

    lab faults                                  # show them
    lab faults --error-rate 0.2                 # 20 % of requests to every route answer 500
    lab faults --latency-ms 300 --route /       # / answers 300 ms later
    lab faults --cpu-ms 50 --leak-mb 2          # each request burns 50 ms of CPU and keeps 2 MB
    lab faults --clear

The token is LAB_ADMIN_TOKEN from the environment or `.env` (`make up` writes one).
"""

import json
import sys

import requests

from .backends import not_answering


class FaultControlError(RuntimeError):
    """The app refused or could not be reached; the message says what to do."""


class FaultControl:
    """A client of the app's /faults endpoint."""

    def __init__(self, app_url: str, token: str):
        self.url = f"{app_url.rstrip('/')}/faults"
        self.token = token

    def show(self) -> dict:
        return self._call("GET")

    def replace(self, faults: dict) -> dict:
        return self._call("PUT", json=faults)

    def clear(self) -> dict:
        return self._call("DELETE")

    def _call(self, method: str, **kwargs) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = requests.request(method, self.url, headers=headers, timeout=10, **kwargs)
        except requests.ConnectionError as error:
            raise FaultControlError(
                f"{self.url}: the app does not answer ({error.__class__.__name__})"
            ) from None
        if response.status_code in (401, 403):
            raise FaultControlError(
                f"{method} {self.url}: {response.json()['error']} "
                "(the app's LAB_ADMIN_TOKEN, from the environment or .env, must match this one)"
            )
        if response.status_code != 200:
            raise FaultControlError(f"{method} {self.url}: HTTP {response.status_code}: {response.text}")
        return response.json()


SETTINGS = ("error_rate", "latency_ms", "cpu_ms", "leak_mb")  # app/faults.py's, each an option


def faults_from_options(settings: dict[str, float | None], route: str | None) -> dict:
    """The PUT body for the settings given (None: not given): for every route, or for one."""
    fault = {name: value for name, value in settings.items() if value is not None}
    return {"routes": {route: fault}} if route else fault


def main(control: FaultControl, settings: dict[str, float | None], route, clear: bool) -> int:
    if clear:
        answer = control.clear()
    elif all(value is None for value in settings.values()):
        if route:
            options = " and/or ".join("--" + name.replace("_", "-") for name in SETTINGS)
            raise FaultControlError(f"--route needs {options}")
        answer = control.show()
    else:
        answer = control.replace(faults_from_options(settings, route))
    print(json.dumps(answer, indent=2))
    return 0


def command(app: str, token: str, settings: dict[str, float | None], route, clear: bool) -> int:
    """`lab faults`: main(), with what went wrong said in one line."""
    try:
        return main(FaultControl(app, token), settings, route, clear)
    except FaultControlError as error:
        print(f"lab faults: {error}", file=sys.stderr)
    except requests.ConnectionError as error:
        print(not_answering("faults", error.request.url), file=sys.stderr)
    return 1
