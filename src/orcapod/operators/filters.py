"""``PolarsFilter``: keep the rows for which Polars predicates hold.

``PolarsFilter(predicates=(), constraints=None)``: ``predicates`` are ``polars.Expr`` (a
single expression is accepted too), ``constraints`` a mapping ``column -> value`` meaning
``pl.col(column) == value`` (``None`` means "is null"). A row is kept when every predicate and
every constraint is true; a null result drops the row. With neither, every row passes.

Approach: only the columns the predicates reference (``Expr.meta.root_names()``; every user
column when an expression names none, e.g. ``pl.all()``) are converted to Polars; the
predicates become one boolean mask, and the Arrow table — every hidden column included, any
type — is filtered with it, keeping the input row order and the input layout.

Validation at application time: the predicates are evaluated on an empty frame with the
input's predicted schema, so an unknown column, a type error or a non-boolean predicate is an
``InputValidationError`` when the filter is applied, not when rows are read.

Identity: each expression is serialised with ``Expr.meta.serialize(format="json")``, so
expression filters have a stable identity and work inside pipelines. The predicates are an
AND, so identity uses them sorted; constraint values must be hashable by
``orcapod.hashing.hash_object`` (checked at construction). ``to_config`` / ``from_config``
round-trip expressions through the same JSON.

polars is imported inside the methods that use it, not with this module, so importing orcapod
does not import it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from orcapod.data.conversion import schema_to_arrow
from orcapod.errors import HashingError, InputValidationError
from orcapod.hashing import hash_object
from orcapod.operators.base import InputInfo, Operator
from orcapod.operators.layout import StreamLayout

if TYPE_CHECKING:
    import polars as pl

__all__ = ["PolarsFilter"]


def _serialise(expr: pl.Expr) -> str:
    text = expr.meta.serialize(format="json")
    return text if isinstance(text, str) else text.decode()


class PolarsFilter(Operator):
    """Rows where every Polars predicate and column constraint holds."""

    def __init__(
        self,
        predicates: pl.Expr | Iterable[pl.Expr] = (),
        constraints: Mapping[str, Any] | None = None,
    ) -> None:
        import polars as pl

        preds = (predicates,) if isinstance(predicates, pl.Expr) else tuple(predicates)
        bad = [type(p).__name__ for p in preds if not isinstance(p, pl.Expr)]
        if bad:
            raise InputValidationError(
                f"PolarsFilter: predicates must be polars expressions (pl.col(...) > 1), got "
                f"{bad}; use constraints={{column: value}} for equality filters"
            )
        constraints = dict(constraints or {})
        for column, value in constraints.items():
            if not isinstance(column, str) or not column:
                raise InputValidationError(
                    f"PolarsFilter: constraint keys must be column names, got {column!r}"
                )
            try:
                hash_object(value)
            except HashingError as err:
                raise InputValidationError(
                    f"PolarsFilter: the constraint value for {column!r} has no stable identity "
                    f"({err}); use a plain value (number, string, date, ...)"
                ) from err
        self.predicates = preds
        self.constraints = constraints
        self._serialised = tuple(_serialise(p) for p in preds)

    def parameters(self) -> dict[str, Any]:
        return {"predicates": list(self._serialised), "constraints": dict(self.constraints)}

    def identity_structure(self) -> Any:
        return {
            "operator": type(self).__name__,
            "parameters": {
                "predicates": sorted(set(self._serialised)),
                "constraints": dict(self.constraints),
            },
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PolarsFilter:
        import polars as pl

        params = dict(config.get("config", {}))
        predicates = [
            pl.Expr.deserialize(io.StringIO(text), format="json")
            for text in params.get("predicates", ())
        ]
        return cls(predicates, params.get("constraints"))

    # Evaluation ---------------------------------------------------------------------------
    def _expressions(self) -> list[pl.Expr]:
        import polars as pl

        exprs = list(self.predicates)
        for column, value in self.constraints.items():
            exprs.append(pl.col(column).is_null() if value is None else pl.col(column) == value)
        return exprs

    def _columns(self, layout: StreamLayout) -> list[str]:
        names: set[str] = set(self.constraints)
        for expr in self.predicates:
            roots = expr.meta.root_names()
            if not roots:
                return list(dict.fromkeys([*layout.user_columns, *names]))
            names.update(roots)
        order = layout.column_names
        missing = sorted(n for n in names if n not in order)
        if missing:
            raise InputValidationError(
                f"PolarsFilter: predicates refer to columns {missing} that the input does not "
                f"have (columns: {layout.user_columns})"
            )
        return [n for n in order if n in names]

    def _mask(self, table: pa.Table) -> pl.Series:
        import polars as pl

        mask = pl.all_horizontal(self._expressions()).alias("__mask")
        return pl.DataFrame(table).with_columns(mask)["__mask"]

    def _predict(self, inputs: Sequence[InputInfo]) -> StreamLayout:
        layout = inputs[0].layout
        if not self.predicates and not self.constraints:
            return layout
        import polars as pl

        columns = self._columns(layout) or layout.column_names[:1]
        empty = pl.DataFrame(schema_to_arrow({c: layout.type_of(c) for c in columns}).empty_table())
        for expr in self._expressions():
            try:
                dtype = empty.select(expr.alias("__mask")).schema["__mask"]
            except pl.exceptions.PolarsError as err:
                raise InputValidationError(
                    f"PolarsFilter: the predicate {expr} does not apply to this input: {err}"
                ) from err
            if dtype != pl.Boolean:
                raise InputValidationError(
                    f"PolarsFilter: predicates must be boolean, but {expr} gives {dtype}"
                )
        return layout

    def _compute(
        self, inputs: Sequence[InputInfo], tables: Sequence[pa.Table], layout: StreamLayout
    ) -> pa.Table:
        table = tables[0]
        if not self.predicates and not self.constraints:
            return table
        columns = self._columns(layout) or table.column_names[:1]
        mask = self._mask(table.select(columns)).to_arrow()
        return table.filter(mask, null_selection_behavior="drop")
