"""``atlas.technology``: technology detection patterns and project templates.

Template checksums: ``checksum`` is the SHA-256 hex digest of the template's canonical JSON
(keys sorted, compact separators, UTF-8; see ``template_checksum``). codeatlas computes it on
every write and checks it on every read, raising TemplateChecksumError when a row was altered
behind its back. Rows written by the Elixir app carry no checksum: they are returned as they
are, unverified; ``TechnologyTemplatesRepository.is_verified(row)`` tells the two apart and
``list(where={"checksum": None})`` finds the unverified ones.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from .._db import Executor
from ..errors import InvalidInputError, NotFoundError, TemplateChecksumError
from ..models import (
    TechnologyPattern,
    TechnologyPatternCreate,
    TechnologyPatternUpdate,
    TechnologyTemplate,
    TechnologyTemplateCreate,
    TechnologyTemplateUpdate,
    TechnologyType,
)
from ._base import Repository, check_flag, check_items

__all__ = ["TechnologyRepository", "TechnologyTemplatesRepository", "template_checksum"]

# One statement, so concurrent detections queue on the row lock and none is lost. Every SET
# expression reads the old row: the new rate is the running mean of the outcomes so far.
_RECORD_DETECTION: Final = """
UPDATE technology_patterns
   SET detection_count  = coalesce(detection_count, 0) + 1,
       success_rate     = (coalesce(success_rate, 0) * coalesce(detection_count, 0) + $3::float8)
                          / (coalesce(detection_count, 0) + 1),
       last_detected_at = (now() AT TIME ZONE 'utc'),
       updated_at       = (now() AT TIME ZONE 'utc')
 WHERE technology_name = $1 AND technology_type = $2
RETURNING id, technology_name, technology_type, version_pattern, file_patterns,
          directory_patterns, config_files, build_command, dev_command, install_command,
          test_command, output_directory, confidence_weight, detection_count, success_rate,
          last_detected_at, extended_metadata, created_at, updated_at"""


def template_checksum(template: Mapping[str, Any]) -> str:
    """Return the SHA-256 hex digest of *template*'s canonical JSON."""
    try:
        canonical = json.dumps(
            template, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"template is not JSON-serialisable: {exc}") from None
    return hashlib.sha256(canonical.encode()).hexdigest()


class TechnologyTemplatesRepository(
    Repository[TechnologyTemplate, TechnologyTemplateCreate, TechnologyTemplateUpdate]
):
    """``atlas.technology.templates``: templates keyed by ``identifier``, checksummed.

    Every write stores the template's checksum; every read verifies it (see the module
    docstring for rows without one).
    """

    row_model = TechnologyTemplate
    create_model = TechnologyTemplateCreate
    update_model = TechnologyTemplateUpdate

    @staticmethod
    def is_verified(row: TechnologyTemplate) -> bool:
        """Return whether *row* carries a checksum matching its template (False: unverified)."""
        return row.checksum is not None and row.checksum == template_checksum(row.template)

    # -- reads verify -------------------------------------------------------------------

    def _row(self, record: Any) -> TechnologyTemplate:
        row = TechnologyTemplate.from_record(record)
        if row.checksum is not None and row.checksum != template_checksum(row.template):
            raise TemplateChecksumError(
                f"technology template {row.identifier!r} (id {row.id}) does not match its "
                "stored checksum: it was altered outside codeatlas",
                table=self.table,
            )
        return row

    def _rows(self, records: Iterable[Any]) -> builtins.list[TechnologyTemplate]:
        return [self._row(record) for record in records]

    async def get_by_identifier(self, identifier: str) -> TechnologyTemplate:
        """Return the template named *identifier* (checksum verified); NotFoundError if none."""
        try:
            return await self._get_by_natural_key({"identifier": identifier})
        except NotFoundError:
            raise NotFoundError(f"no technology template {identifier!r}") from None

    # -- writes stamp the checksum --------------------------------------------------------

    def _sealed(self, data: TechnologyTemplateCreate) -> TechnologyTemplateCreate:
        self._check_create(data)
        checksum = template_checksum(data.template)
        if data.checksum is not None and data.checksum != checksum:
            raise TemplateChecksumError(
                f"technology template {data.identifier!r}: the given checksum does not match "
                "the template",
                table=self.table,
            )
        return data.model_copy(update={"checksum": checksum})

    async def put(self, data: TechnologyTemplateCreate) -> TechnologyTemplate:
        """Insert or replace the template with this identifier, storing its checksum."""
        return await super().upsert(self._sealed(data))

    async def insert(self, data: TechnologyTemplateCreate) -> TechnologyTemplate:
        """Insert one template with its checksum and return it as stored."""
        return await super().insert(self._sealed(data))

    async def insert_many(self, items: Sequence[TechnologyTemplateCreate]) -> int:
        """Insert every template with its checksum, atomically; return the count."""
        check_items(items, field="items")
        return await super().insert_many([self._sealed(item) for item in items])

    async def upsert(self, data: TechnologyTemplateCreate) -> TechnologyTemplate:
        """Same as ``put``: insert or replace by identifier, storing the checksum."""
        return await self.put(data)

    async def upsert_many(self, items: Sequence[TechnologyTemplateCreate]) -> int:
        """Upsert every template by identifier with its checksum, atomically."""
        check_items(items, field="items")
        return await super().upsert_many([self._sealed(item) for item in items])

    async def update(self, key: Any, patch: TechnologyTemplateUpdate) -> TechnologyTemplate:
        """Write the fields set on *patch*; a new ``template`` gets its new checksum.

        ``checksum`` is derived, so a patch may set it only alongside a matching template.
        """
        if not isinstance(patch, TechnologyTemplateUpdate):
            raise InvalidInputError(
                f"update takes TechnologyTemplateUpdate, got {type(patch).__name__}"
            )
        written = patch.model_fields_set
        if "template" in written and patch.template is not None:
            checksum = template_checksum(patch.template)
            if "checksum" in written and patch.checksum != checksum:
                raise TemplateChecksumError(
                    "the patch's checksum does not match its template", table=self.table
                )
            patch = TechnologyTemplateUpdate(
                **{name: getattr(patch, name) for name in written}, checksum=checksum
            )
        elif "checksum" in written:
            raise InvalidInputError(
                "checksum is derived from the template: patch the template instead"
            )
        return await super().update(key, patch)


class TechnologyRepository(
    Repository[TechnologyPattern, TechnologyPatternCreate, TechnologyPatternUpdate]
):
    """Technology patterns keyed by (technology_name, technology_type), with ``.templates``.

    Patterns are upserted by that key with the base ``upsert``/``upsert_many``.
    """

    row_model = TechnologyPattern
    create_model = TechnologyPatternCreate
    update_model = TechnologyPatternUpdate

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)
        self.templates = TechnologyTemplatesRepository(executor)

    async def record_detection(
        self, technology_name: str, technology_type: TechnologyType | str, *, success: bool
    ) -> TechnologyPattern:
        """Count one detection of a pattern and fold *success* into its success rate.

        Atomic (one UPDATE): concurrent calls lose no count. Also stamps
        ``last_detected_at``. Raises NotFoundError if no such pattern exists.
        """
        kind = (
            technology_type.value
            if isinstance(technology_type, TechnologyType)
            else str(technology_type)
        )
        technology_name = self._value("technology_name", technology_name)
        kind = self._value("technology_type", kind)
        check_flag(success, field="success")
        record = await self._executor.fetchrow(
            _RECORD_DETECTION, technology_name, kind, 1.0 if success else 0.0
        )
        if record is None:
            raise NotFoundError(f"no technology pattern ({technology_name!r}, {kind!r})")
        return self._row(record)
