"""``TableSpec``: the facts of one table, declared once, on the row model that maps it.

The facts sit on the row model because its fields are the table's columns and the vector
column's dimensions are already written in its field type (``Vector768``): the table's name,
its keys and its vector and text indexes' names go next to them, nowhere else. Everything
else derives from the bound spec: the model's ``__table__``, ``__primary_key__`` and
``__vector_columns__``, a repository's ``table``, ``primary_key``, ``natural_key``,
``vector_column``, ``dimensions``, ``vector_index`` and ``text_index`` (full-text search),
and ``codeatlas.indexes.VECTOR_INDEXES``. tests/test_metadata.py checks
the specs against the catalog of the migrated database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "TEXT_SEARCH_COLUMN",
    "TEXT_SEARCH_CONFIG",
    "VECTOR_OPCLASS",
    "TableSpec",
    "TextIndex",
    "VectorIndex",
]

#: The operator class of every vector index: searches order by ``<=>`` (cosine distance),
#: which only a ``vector_cosine_ops`` index can serve.
VECTOR_OPCLASS: Final = "vector_cosine_ops"

#: The STORED generated tsvector column of a table with full-text search (migration
#: 20261203000001 builds it in SQL, so rows written by any client have it).
TEXT_SEARCH_COLUMN: Final = "search_tsv"
#: The text search configuration the column is built with; queries must use the same one.
TEXT_SEARCH_CONFIG: Final = "english"
_TEXT_SEARCH_REASON: Final = (
    "generated tsvector (full-text search), computed by PostgreSQL; read by search_text and "
    "search_hybrid only"
)

_IDENTIFIER: Final = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class VectorIndex:
    """The IVFFlat index of a table's vector column (the allow-list of index maintenance)."""

    table: str
    column: str
    name: str
    dimensions: int


@dataclass(frozen=True, slots=True)
class TextIndex:
    """The generated tsvector column of a table and its GIN index (full-text search)."""

    table: str
    column: str
    name: str


@dataclass(frozen=True, slots=True)
class TableSpec:
    """The facts of one table: its name, keys, vector index and the columns left unmapped.

    Declare it on the row model as ``__table_spec__ = TableSpec("rules", ...)``; the model
    binds it when the class is created, filling ``vector`` from its vector-typed field.
    """

    name: str
    #: the column ``get``/``update``/``delete`` address rows by
    primary_key: str = "id"
    #: the unique columns ``upsert`` conflicts on (None: the table has no upsert)
    natural_key: tuple[str, ...] | None = None
    #: the name of the IVFFlat index on the vector column (None: not searchable)
    vector_index: str | None = None
    #: columns of the table the model does not map -> why (the catalog test reads this)
    unmapped: Mapping[str, str] = field(default_factory=dict, hash=False)
    #: the name of the GIN index on the ``search_tsv`` column (None: no full-text search);
    #: ``bind`` lists the column as unmapped, since no model maps a generated column
    text_index: str | None = None
    #: the vector column, its dimensions and its index; derived by ``bind``
    vector: VectorIndex | None = field(default=None, init=False)
    #: the tsvector column and its GIN index; derived by ``bind``
    text: TextIndex | None = field(default=None, init=False)

    def bind(self, model: str, columns: Sequence[str], vectors: Mapping[str, int]) -> TableSpec:
        """Return this spec checked against *model*'s *columns*, with ``vector`` filled in.

        *vectors* maps the model's vector columns to their dimensions. Raises TypeError on a
        spec that cannot describe the model, so a mistake fails at import, not in SQL.
        """
        # table and index names end up in SQL text: plain identifiers only
        names = [("table", self.name), *(("unmapped column", name) for name in self.unmapped)]
        if self.vector_index is not None:
            names.append(("vector index", self.vector_index))
        if self.text_index is not None:
            names.append(("text index", self.text_index))
        problems = [
            f"{what} {name!r} is not a plain identifier"
            for what, name in names
            if not _IDENTIFIER.match(name)
        ]
        keys = (self.primary_key, *(self.natural_key or ()))
        problems += [f"key column {key!r} is not a field" for key in keys if key not in columns]
        problems += [
            f"unmapped column {name!r} is a field" for name in self.unmapped if name in columns
        ]
        if self.natural_key == ():
            problems.append("natural_key is empty (None means no natural key)")
        if len(vectors) > 1:
            problems.append(f"more than one vector column: {', '.join(vectors)}")
        elif vectors and self.vector_index is None:
            problems.append(f"vector column {next(iter(vectors))!r} has no vector_index")
        elif self.vector_index is not None and not vectors:
            problems.append(f"vector_index {self.vector_index!r} but no vector column")
        if self.text_index is not None and TEXT_SEARCH_COLUMN in columns:
            problems.append(f"{TEXT_SEARCH_COLUMN!r} is generated by the database, not a field")
        if problems:
            raise TypeError(f"{model}.__table_spec__: {'; '.join(problems)}")
        unmapped = dict(self.unmapped)
        if self.text_index is not None:
            unmapped.setdefault(TEXT_SEARCH_COLUMN, _TEXT_SEARCH_REASON)
        bound = TableSpec(
            self.name,
            self.primary_key,
            self.natural_key,
            self.vector_index,
            unmapped,
            self.text_index,
        )
        if self.text_index is not None:
            object.__setattr__(
                bound, "text", TextIndex(self.name, TEXT_SEARCH_COLUMN, self.text_index)
            )
        if self.vector_index is not None:
            [(column, dimensions)] = vectors.items()
            # frozen: the derived field is set once, here, on the new instance
            object.__setattr__(
                bound, "vector", VectorIndex(self.name, column, self.vector_index, dimensions)
            )
        return bound
