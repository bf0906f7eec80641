"""atlas.technology: pattern upserts, atomic detection counting, checksummed templates."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import codeatlas
from codeatlas.errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    TemplateChecksumError,
)
from codeatlas.models import (
    TechnologyPatternCreate,
    TechnologyTemplateCreate,
    TechnologyTemplateUpdate,
    TechnologyType,
)
from codeatlas.repositories.technology import TechnologyTemplatesRepository, template_checksum


def pattern(
    name: str = "django", kind: TechnologyType = TechnologyType.FRAMEWORK, **fields: Any
) -> TechnologyPatternCreate:
    return TechnologyPatternCreate(technology_name=name, technology_type=kind, **fields)


def template(identifier: str = "fastapi-service", **body: object) -> TechnologyTemplateCreate:
    return TechnologyTemplateCreate(
        identifier=identifier,
        category="service",
        version="1.0",
        template=body or {"files": {"main.py": "app = FastAPI()"}, "ports": [8000], "ü": "ß"},
    )


async def test_pattern_upsert_by_name_and_type(atlas: codeatlas.Atlas) -> None:
    first = await atlas.technology.upsert(pattern(file_patterns=["manage.py"]))
    again = await atlas.technology.upsert(pattern(file_patterns=["manage.py", "settings.py"]))
    tool = await atlas.technology.upsert(pattern(kind=TechnologyType.TOOL))
    assert again.id == first.id
    assert again.file_patterns == ["manage.py", "settings.py"]
    assert tool.id != first.id
    assert first.detection_count == 0 and first.success_rate == 1.0


async def test_record_detection_keeps_a_running_success_rate(atlas: codeatlas.Atlas) -> None:
    await atlas.technology.upsert(pattern())
    outcomes = [True, False, True, True]
    row = None
    for outcome in outcomes:
        row = await atlas.technology.record_detection(
            "django", TechnologyType.FRAMEWORK, success=outcome
        )
    assert row is not None
    assert row.detection_count == 4
    assert row.success_rate == pytest.approx(0.75)
    assert row.last_detected_at is not None
    assert abs(datetime.now(UTC) - row.last_detected_at) < timedelta(seconds=30)
    # a plain string type is accepted (the column is free text on the Elixir side)
    row = await atlas.technology.record_detection("django", "framework", success=False)
    assert row.detection_count == 5
    assert row.success_rate == pytest.approx(0.6)


async def test_record_detection_on_an_elixir_row_with_null_counters(
    atlas: codeatlas.Atlas,
) -> None:
    await atlas.executor.execute(
        "INSERT INTO technology_patterns (technology_name, technology_type, detection_count, "
        "success_rate) VALUES ('phoenix', 'framework', NULL, NULL)"
    )
    row = await atlas.technology.record_detection("phoenix", "framework", success=True)
    assert (row.detection_count, row.success_rate) == (1, 1.0)


async def test_record_detection_unknown_pattern(atlas: codeatlas.Atlas) -> None:
    await atlas.technology.upsert(pattern())
    with pytest.raises(NotFoundError, match="rails"):
        await atlas.technology.record_detection("rails", TechnologyType.FRAMEWORK, success=True)
    # same name, other type: still unknown
    with pytest.raises(NotFoundError):
        await atlas.technology.record_detection("django", TechnologyType.TOOL, success=True)


async def test_concurrent_detections_lose_no_count(atlas: codeatlas.Atlas) -> None:
    await atlas.technology.upsert(pattern())
    outcomes = [i % 4 != 0 for i in range(20)]  # 15 successes of 20
    await asyncio.gather(
        *(
            atlas.technology.record_detection("django", TechnologyType.FRAMEWORK, success=s)
            for s in outcomes
        )
    )
    row = (await atlas.technology.list()).items[0]
    assert row.detection_count == 20
    assert row.success_rate == pytest.approx(0.75)


def test_checksum_is_sha256_of_canonical_json() -> None:
    body = {"b": [1, 2.5, None], "a": {"y": True, "x": "é"}}
    canonical = '{"a":{"x":"é","y":true},"b":[1,2.5,null]}'
    assert template_checksum(body) == hashlib.sha256(canonical.encode()).hexdigest()
    # key order does not matter
    assert template_checksum(dict(reversed(list(body.items())))) == template_checksum(body)
    with pytest.raises(InvalidInputError):
        template_checksum({"x": float("nan")})


async def test_put_stores_the_checksum_and_upserts_by_identifier(atlas: codeatlas.Atlas) -> None:
    stored = await atlas.technology.templates.put(template())
    assert stored.checksum == template_checksum(stored.template)
    assert TechnologyTemplatesRepository.is_verified(stored)
    replaced = await atlas.technology.templates.put(template(files={"app.py": "new"}))
    assert replaced.id == stored.id
    assert replaced.template == {"files": {"app.py": "new"}}
    assert replaced.checksum == template_checksum({"files": {"app.py": "new"}})
    again = await atlas.technology.templates.get_by_identifier("fastapi-service")
    assert again == replaced
    assert await atlas.technology.templates.count() == 1


async def test_every_write_path_stamps_the_checksum(atlas: codeatlas.Atlas) -> None:
    templates = atlas.technology.templates
    inserted = await templates.insert(template("one"))
    await templates.insert_many([template(f"many{i}", i=i) for i in range(3)])
    await templates.upsert_many([template(f"bulk{i}", i=i) for i in range(100)])
    checksums = await atlas.executor.fetch(
        "SELECT identifier, template, checksum FROM technology_templates"
    )
    assert len(checksums) == 104
    assert all(r["checksum"] == template_checksum(r["template"]) for r in checksums)

    patched = await templates.update(inserted.id, TechnologyTemplateUpdate(template={"v": 2}))
    assert patched.checksum == template_checksum({"v": 2})
    renamed = await templates.update(inserted.id, TechnologyTemplateUpdate(version="2.0"))
    assert renamed.checksum == patched.checksum
    # the checksum is derived: setting it alone, or a wrong one, is refused
    with pytest.raises(InvalidInputError):
        await templates.update(inserted.id, TechnologyTemplateUpdate(checksum="0" * 64))
    with pytest.raises(TemplateChecksumError):
        await templates.update(
            inserted.id, TechnologyTemplateUpdate(template={"v": 3}, checksum="0" * 64)
        )
    with pytest.raises(TemplateChecksumError):
        await templates.put(template("bad").model_copy(update={"checksum": "0" * 64}))
    assert (await templates.get(inserted.id)).template == {"v": 2}


async def test_reads_detect_a_template_altered_behind_codeatlas(atlas: codeatlas.Atlas) -> None:
    stored = await atlas.technology.templates.put(template())
    await atlas.technology.templates.put(template("untouched"))
    await atlas.executor.execute(
        """UPDATE technology_templates SET template = '{"evil": true}'::jsonb WHERE id = $1""",
        stored.id,
    )
    templates = atlas.technology.templates
    with pytest.raises(TemplateChecksumError, match="fastapi-service") as caught:
        await templates.get_by_identifier("fastapi-service")
    assert isinstance(caught.value, IntegrityError)
    with pytest.raises(TemplateChecksumError):
        await templates.get(stored.id)
    with pytest.raises(TemplateChecksumError):
        await templates.list()
    # the untouched row still reads
    assert (await templates.get_by_identifier("untouched")).identifier == "untouched"
    # writing it again through codeatlas re-seals it
    healed = await templates.put(template())
    assert TechnologyTemplatesRepository.is_verified(healed)


async def test_rows_without_checksum_are_returned_unverified(atlas: codeatlas.Atlas) -> None:
    # as the Elixir app writes them: no checksum
    await atlas.executor.execute(
        "INSERT INTO technology_templates (identifier, category, template) "
        """VALUES ('elixir', 'service', '{"mix": "phx.new"}'::jsonb)"""
    )
    row = await atlas.technology.templates.get_by_identifier("elixir")
    assert row.checksum is None
    assert row.template == {"mix": "phx.new"}
    assert not TechnologyTemplatesRepository.is_verified(row)
    unverified = await atlas.technology.templates.list({"checksum": None})
    assert [r.identifier for r in unverified.items] == ["elixir"]


async def test_get_by_identifier_unknown(atlas: codeatlas.Atlas) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        await atlas.technology.templates.get_by_identifier("nope")


async def test_checksum_survives_the_jsonb_round_trip(atlas: codeatlas.Atlas) -> None:
    # jsonb normalises what it stores (key order, whitespace, number text): a template read
    # back must still hash to the checksum computed before writing
    body = {
        "z": 1e-7,
        "big": 2**60,
        "f": 1000.0,
        "neg": -0.5,
        "s": "line\nbreak \u00e9 \U0001f600",
        "nested": [{"k": [], "b": False}],
        "a": None,
    }
    stored = await atlas.technology.templates.put(template("roundtrip", **body))
    fresh = await atlas.technology.templates.get(stored.id)
    assert fresh.template == body
    assert TechnologyTemplatesRepository.is_verified(fresh)
