"""get_weather against a local stand-in for Open-Meteo's geocoding and forecast APIs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from django.test import override_settings

from tools.builtins import WEATHER_TOOL
from tools.registry import ToolContext, ToolOutcome, tool_execute

CONTEXT = ToolContext(user_id=uuid.uuid4(), chat_id=uuid.uuid4(), message_id=uuid.uuid4())
FORECAST = {
    "current_units": {"temperature_2m": "°C", "wind_speed_10m": "km/h"},
    "current": {"time": "2026-12-03T12:00", "temperature_2m": 4.2, "weather_code": 61,
                "wind_speed_10m": 11.0},
    "daily": {"time": ["2026-12-03", "2026-12-04"], "weather_code": [61, 3],
              "temperature_2m_max": [5.0, 6.5], "temperature_2m_min": [1.0, 2.0],
              "precipitation_sum": [3.2, 0.0]},
}  # fmt: skip

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def open_meteo(
    *, forecast: Handler | None = None, places: list[dict[str, Any]] | None = None
) -> AsyncIterator[list[web.Request]]:
    seen: list[web.Request] = []

    async def search(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response({"results": places} if places else {"generationtime_ms": 0.1})

    async def forecast_default(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response(FORECAST)

    app = web.Application()
    app.router.add_get("/v1/search", search)
    app.router.add_get("/v1/forecast", forecast or forecast_default)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    try:
        with override_settings(WEATHER_API_BASE=base, WEATHER_GEOCODING_BASE=base):
            yield seen
    finally:
        await runner.cleanup()


def call(arguments: str, **stand_in: Any) -> tuple[ToolOutcome, list[web.Request]]:
    async def go() -> tuple[ToolOutcome, list[web.Request]]:
        async with open_meteo(**stand_in) as seen:
            outcome = await tool_execute(
                tools=[WEATHER_TOOL], name="get_weather", arguments=arguments, context=CONTEXT
            )
            return outcome, seen

    return asyncio.run(go())


BERLIN = {"name": "Berlin", "country": "Germany", "latitude": 52.52, "longitude": 13.41,
          "timezone": "Europe/Berlin"}  # fmt: skip


def test_a_place_by_name_is_geocoded_then_its_forecast_read() -> None:
    outcome, seen = call('{"location": "Berlin", "days": 2}', places=[BERLIN])
    assert not outcome.is_error
    assert outcome.result["place"] == {
        "name": "Berlin", "country": "Germany", "latitude": 52.52, "longitude": 13.41,
    }  # fmt: skip
    assert outcome.result["current"]["conditions"] == "light rain"
    assert outcome.result["daily"][1] == {
        "date": "2026-12-04", "conditions": "overcast", "max": 6.5, "min": 2.0,
        "precipitation": 0.0,
    }  # fmt: skip
    search, forecast = seen
    assert search.query["name"] == "Berlin"
    assert forecast.query["latitude"] == "52.52"
    assert forecast.query["timezone"] == "Europe/Berlin"
    assert forecast.query["forecast_days"] == "2"


def test_coordinates_skip_the_geocoding() -> None:
    outcome, seen = call('{"latitude": 48.85, "longitude": 2.35}')
    assert not outcome.is_error
    assert [request.path for request in seen] == ["/v1/forecast"]
    assert outcome.result["place"]["latitude"] == 48.85


def test_an_unknown_place_is_a_not_found_result() -> None:
    outcome, _ = call('{"location": "Atlantis"}', places=[])
    assert outcome.result["error"] == {
        "type": "not_found", "message": "No place called 'Atlantis' was found.",
    }  # fmt: skip


def test_a_failing_service_is_an_upstream_error_result() -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=502, text="bad gateway")

    outcome, _ = call('{"latitude": 1, "longitude": 2}', forecast=broken)
    assert outcome.result["error"]["type"] == "upstream_error"
    assert "status 502" in outcome.result["error"]["message"]


def test_arguments_out_of_range_or_missing_are_refused_before_any_request() -> None:
    outcome, seen = call('{"latitude": 91, "longitude": 0}')
    assert outcome.result["error"]["type"] == "invalid_arguments"
    outcome, seen = call("{}")
    assert outcome.result["error"]["message"] == "Give a location, or a latitude and a longitude."
    assert seen == []
