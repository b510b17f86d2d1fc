"""The tools every deployment has: the weather (Open-Meteo) and, in `tools.code`, `run_code`.

Open-Meteo needs no key. Its addresses are settings (`WEATHER_API_BASE`,
`WEATHER_GEOCODING_BASE`), set by an administrator, never by a user, so they are not passed
through the URL guard that user-supplied addresses go through.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from django.conf import settings

from tools.code import RUN_CODE_TOOL
from tools.registry import StaticSource, Tool, ToolContext, ToolError

WEATHER_TIMEOUT_SECONDS = 10.0
_WEATHER_CODES = {
    0: "clear sky", 1: "mainly clear", 2: "partly cloudy", 3: "overcast", 45: "fog",
    48: "depositing rime fog", 51: "light drizzle", 53: "drizzle", 55: "dense drizzle",
    61: "light rain", 63: "rain", 65: "heavy rain", 66: "freezing rain", 67: "heavy freezing rain",
    71: "light snow", 73: "snow", 75: "heavy snow", 77: "snow grains", 80: "light showers",
    81: "showers", 82: "violent showers", 85: "snow showers", 86: "heavy snow showers",
    95: "thunderstorm", 96: "thunderstorm with hail", 99: "thunderstorm with heavy hail",
}  # fmt: skip
_CURRENT = (
    "temperature_2m,apparent_temperature,relative_humidity_2m,precipitation,weather_code,"
    "wind_speed_10m"
)
_DAILY = "weather_code,temperature_2m_max,temperature_2m_min,precipitation_sum"


async def _get_json(url: str, params: dict[str, Any]) -> Any:
    timeout = aiohttp.ClientTimeout(total=WEATHER_TIMEOUT_SECONDS)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, params=params, allow_redirects=False) as response,
        ):
            body = await response.read()
            if response.status != 200:
                raise ToolError(
                    f"The weather service answered with status {response.status}.",
                    type_="upstream_error",
                )
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ToolError("The weather service cannot be reached.", type_="upstream_error") from error
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ToolError(
            "The weather service sent something unreadable.", type_="upstream_error"
        ) from error


def _at(series: dict[str, Any], name: str, index: int) -> Any:
    values = series.get(name)
    return values[index] if isinstance(values, list) and index < len(values) else None


async def _place(name: str) -> dict[str, Any]:
    found = await _get_json(
        f"{settings.WEATHER_GEOCODING_BASE.rstrip('/')}/v1/search",
        {"name": name, "count": 1, "format": "json"},
    )
    results = found.get("results") if isinstance(found, dict) else None
    if not results:
        raise ToolError(f"No place called {name!r} was found.", type_="not_found")
    place = results[0]
    return {
        "name": place.get("name"),
        "country": place.get("country"),
        "latitude": place.get("latitude"),
        "longitude": place.get("longitude"),
        "timezone": place.get("timezone") or "auto",
    }


async def get_weather(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    """The current weather and a few days' forecast for a place (by name or coordinates)."""
    if "latitude" in arguments and "longitude" in arguments:
        place: dict[str, Any] = {
            "name": arguments.get("location") or None,
            "latitude": arguments["latitude"],
            "longitude": arguments["longitude"],
            "timezone": "auto",
        }
    elif arguments.get("location"):
        place = await _place(str(arguments["location"]))
    else:
        raise ToolError(
            "Give a location, or a latitude and a longitude.", type_="invalid_arguments"
        )
    days = int(arguments.get("days", 3))
    forecast = await _get_json(
        f"{settings.WEATHER_API_BASE.rstrip('/')}/v1/forecast",
        {
            "latitude": place["latitude"],
            "longitude": place["longitude"],
            "current": _CURRENT,
            "daily": _DAILY,
            "forecast_days": days,
            "timezone": place["timezone"],
        },
    )
    if not isinstance(forecast, dict):
        raise ToolError("The weather service sent something unreadable.", type_="upstream_error")
    current = dict(forecast.get("current") or {})
    if "weather_code" in current:
        current["conditions"] = _WEATHER_CODES.get(current["weather_code"], "unknown")
    daily = forecast.get("daily") or {}
    dates = daily.get("time") or []
    days_out = [
        {
            "date": date,
            "conditions": _WEATHER_CODES.get(_at(daily, "weather_code", i), "unknown"),
            "max": _at(daily, "temperature_2m_max", i),
            "min": _at(daily, "temperature_2m_min", i),
            "precipitation": _at(daily, "precipitation_sum", i),
        }
        for i, date in enumerate(dates[:days])
    ]
    return {
        "place": {key: place.get(key) for key in ("name", "country", "latitude", "longitude")},
        "units": forecast.get("current_units") or {},
        "current": current,
        "daily": days_out,
    }


WEATHER_TOOL = Tool(
    name="get_weather",
    description=(
        "Get the current weather and the forecast for the next days at a place, by its name "
        "(a city, optionally with its country) or by coordinates."
    ),
    parameters={
        "type": "object",
        "properties": {
            "location": {"type": "string", "minLength": 1, "maxLength": 200},
            "latitude": {"type": "number", "minimum": -90, "maximum": 90},
            "longitude": {"type": "number", "minimum": -180, "maximum": 180},
            "days": {"type": "integer", "minimum": 1, "maximum": 7, "default": 3},
        },
        "additionalProperties": False,
    },
    group="weather",
    function=get_weather,
    timeout_seconds=WEATHER_TIMEOUT_SECONDS * 2 + 1,
)

builtin_source = StaticSource(name="builtin", static_tools=(WEATHER_TOOL, RUN_CODE_TOOL))
