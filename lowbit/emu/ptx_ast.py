"""The PTX syntax tree that the parser produces and the machine executes.

One frozen value per PTX construct (PTX ISA 9.0, chapters 4 "Syntax", 5 "State
Spaces, Types, and Variables", 6 "Instruction Operands", 11 "Directives").
The tree is deliberately close to the source: an instruction keeps its
modifiers in source order (``mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32``
becomes opcode ``"mma"`` and the ten modifiers), and operands say only what
they *are* syntactically.  Giving them meaning (which modifier is the type,
how wide an immediate is) is the machine's job, where the instruction's
semantics live.

What the parser has already done, so that the machine need not:

* ``.reg .b32 %r<12>;`` is expanded to ``%r0`` .. ``%r11``;
* registers (and labels) declared inside ``{ }`` scopes -- inline asm -- are
  renamed to ``<name>@<scope number>`` so that a function has one flat register
  namespace (``@`` cannot occur in a PTX identifier, so no clash is possible);
* bare identifiers are classified: a declared register becomes
  :class:`Register`, a branch target :class:`LabelRef` (resolved to the index
  of the instruction it labels), anything else :class:`Symbol`;
* debug directives (``.loc``, ``.file``, ``.section``, ``.pragma``) are dropped;
* Hopper/Blackwell-only families (wgmma, mbarrier, cp.async.bulk / TMA,
  tcgen05) are rejected with :class:`lowbit.errors.UnsupportedPTXError`.

Equality: operands, guards, instructions and declarations compare by value;
:class:`Function` and :class:`Module` compare by identity (they hold dicts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

# --------------------------------------------------------------------------- operands


@dataclass(frozen=True)
class Register:
    """A (possibly renamed) register, e.g. ``%r3``, ``%rd1``, ``%p2``, ``tmp@4``.

    ``component`` is ``"x"``/``"y"``/``"z"``/``"w"`` for an element of a
    ``.v2``/``.v4`` vector register (``%v.x``, ISA 5.4.2), else ``None``.
    """

    name: str
    component: str | None = None


@dataclass(frozen=True)
class SpecialRegister:
    """A read-only special register (ISA 10): ``%tid.x`` is ``("%tid", "x")``.

    ``component`` is ``None`` for scalar ones (``%laneid``, ``%warpid``,
    ``%clock64``, ``%lanemask_lt``, ``%dynamic_smem_size``, ``%envreg3``...).
    """

    name: str
    component: str | None = None


@dataclass(frozen=True)
class Immediate:
    """An integer literal (decimal, hex ``0x``, octal ``0``, binary ``0b``; ``U`` suffix dropped).

    ``value`` is the mathematical value as written (``-1`` stays ``-1``; ISA
    4.5.1 says integer literals are 64-bit); the instruction type decides how
    it is truncated.
    """

    value: int


@dataclass(frozen=True)
class FloatImmediate:
    """A floating-point literal as raw bits.

    ``0f3F800000`` gives ``bits=0x3F800000, width=32``; ``0d3FF0000000000000``
    gives width 64.  A decimal literal (``1.5``, ``1e-3``) is, per ISA 4.5.2,
    an f64 value: it is stored as its f64 bits with ``width=64`` and the
    instruction type converts it.
    """

    bits: int
    width: int


@dataclass(frozen=True)
class Sink:
    """The sink symbol ``_`` (a discarded vector element or destination)."""


@dataclass(frozen=True)
class Negated:
    """A logically negated predicate source, ``!%p`` (setp/selp/set combine operand)."""

    operand: Register


@dataclass(frozen=True)
class PredicatePair:
    """``%p|%q``: the two destinations of ``setp``/``set``-with-complement (ISA 9.7.7.2)."""

    first: Register
    second: Register | Sink


@dataclass(frozen=True)
class Symbol:
    """A named variable or function: a param, a shared/global/const/local variable, a callee."""

    name: str


@dataclass(frozen=True)
class LabelRef(Symbol):
    """A branch target; ``target`` is the index in ``Function.body`` of the labelled instruction.

    ``target == len(body)`` when the label is the last thing in the function
    (falling off the end is ``ret``).  A subclass of :class:`Symbol` so code
    that only wants "a name" can treat both alike.
    """

    target: int = -1


@dataclass(frozen=True)
class Vector:
    """A brace-enclosed vector operand ``{%r1, %r2, _, %r4}`` (ISA 6.4.2)."""

    elements: tuple[Operand, ...]


@dataclass(frozen=True)
class Address:
    """A memory operand ``[base+offset]`` (ISA 6.4.1).

    ``base`` is a :class:`Register`, a :class:`Symbol` (``[k_param_0]``,
    ``[global_smem+1024]``) or ``None`` for an absolute address ``[1024]``.
    """

    base: Register | Symbol | None
    offset: int = 0


@dataclass(frozen=True)
class SymbolOffset:
    """``sym+imm`` used as a value (the address of a variable plus a constant), e.g. in ``mov``."""

    symbol: Symbol
    offset: int


@dataclass(frozen=True)
class CallArgs:
    """A parenthesised argument/return list of ``call`` (``(retval0)``, ``(param0, param1)``)."""

    elements: tuple[Operand, ...]


Operand = Union[
    Register,
    SpecialRegister,
    Immediate,
    FloatImmediate,
    Sink,
    Negated,
    PredicatePair,
    Symbol,
    LabelRef,
    Vector,
    Address,
    SymbolOffset,
    CallArgs,
]

# --------------------------------------------------------------------------- instructions


@dataclass(frozen=True)
class Guard:
    """The guard predicate ``@%p`` (``negated=False``) or ``@!%p`` (``negated=True``)."""

    register: str
    negated: bool = False


@dataclass(frozen=True)
class Instruction:
    """One PTX instruction statement.

    ``opcode`` is the first dotted component (``"ld"``), ``modifiers`` the
    rest in source order (``("global", "nc", "v4", "b32")``).  ``line`` is the
    1-based line of the opcode in the parsed text and ``text`` the statement
    as written (guard to semicolon), for error messages.
    """

    opcode: str
    modifiers: tuple[str, ...]
    operands: tuple[Operand, ...]
    guard: Guard | None
    line: int
    text: str

    @property
    def full_opcode(self) -> str:
        """The dotted spelling, ``"mma.sync.aligned.m16n8k16..."``."""
        return ".".join((self.opcode, *self.modifiers))

    def has(self, *modifiers: str) -> bool:
        """True when every one of ``modifiers`` is among this instruction's modifiers."""
        return all(m in self.modifiers for m in modifiers)


# --------------------------------------------------------------------------- declarations

#: Byte size of each PTX fundamental type (ISA 5.2.1); ``pred`` has no memory size.
TYPE_SIZES: dict[str, int] = {
    "b8": 1, "u8": 1, "s8": 1,
    "b16": 2, "u16": 2, "s16": 2, "f16": 2, "bf16": 2,
    "b32": 4, "u32": 4, "s32": 4, "f32": 4, "f16x2": 4, "bf16x2": 4, "tf32": 4,
    "b64": 8, "u64": 8, "s64": 8, "f64": 8,
    "b128": 16,
    "e4m3": 1, "e5m2": 1, "e4m3x2": 2, "e5m2x2": 2,
    "pred": 0,
}


@dataclass(frozen=True)
class RegisterDecl:
    """One declared register: ``.reg .b32 %r<3>`` gives three of these.

    ``type`` is the type name without the dot (``"b32"``, ``"pred"``,
    ``"f16x2"``); ``vector`` is 2 or 4 for ``.reg .v4 .f32 %v``, else 1.
    """

    name: str
    type: str
    vector: int = 1
    line: int = 0


@dataclass(frozen=True)
class VariableDecl:
    """A ``.global``/``.const``/``.shared``/``.local`` variable (module or function scope).

    ``space`` is ``"global"``, ``"const"``, ``"shared"`` or ``"local"``;
    ``type`` the element type (``"b8"``); ``align`` the ``.align`` value or
    ``None``; ``dims`` the array dimensions (``()`` for a scalar, ``(None,)``
    for an unsized ``extern`` array such as ``.extern .shared .b8 smem[]``);
    ``extern`` / ``linkage`` from ``.extern``/``.visible``/``.weak``/
    ``.common``; ``init`` the initializer as little-endian bytes (``None`` if
    absent; symbols in initializers are not supported and raise).
    """

    name: str
    space: str
    type: str
    align: int | None = None
    dims: tuple[int | None, ...] = ()
    vector: int = 1
    extern: bool = False
    linkage: str | None = None
    init: bytes | None = None
    line: int = 0

    @property
    def element_size(self) -> int:
        return TYPE_SIZES[self.type] * self.vector

    @property
    def size(self) -> int | None:
        """Total bytes, or ``None`` for an unsized extern array."""
        n = 1
        for d in self.dims:
            if d is None:
                return None
            n *= d
        return n * self.element_size


@dataclass(frozen=True)
class Param:
    """A kernel or function parameter (ISA 5.1.6).

    ``type`` like ``"u64"``; ``align`` from ``.align``; ``dims`` for array
    params (``.param .align 8 .b8 p[16]``); ``ptr_space``/``ptr_align`` from the
    kernel-only ``.ptr .global .align 16`` attributes (``None`` if absent).
    """

    name: str
    type: str
    align: int | None = None
    dims: tuple[int, ...] = ()
    ptr_space: str | None = None
    ptr_align: int | None = None

    @property
    def size(self) -> int:
        n = TYPE_SIZES[self.type]
        for d in self.dims:
            n *= d
        return n


@dataclass(eq=False)
class Function:
    """A ``.entry`` (kernel) or ``.func`` (device function).

    ``registers`` maps every register name (after scope renaming) to its
    declaration; ``labels`` maps every label (after renaming) to the index in
    ``body`` of the instruction it precedes.  ``shared``/``local`` hold the
    function-scope variable declarations.  ``directives`` holds performance
    directives as written (``{"reqntid": (128, 1, 1), "maxnreg": (255,)}``);
    ``reqntid``/``maxntid`` are padded to three dimensions.
    ``body is None`` for a prototype without a body (``.extern .func``).
    """

    name: str
    kind: str  # "entry" or "func"
    params: tuple[Param, ...]
    returns: tuple[Param, ...] = ()
    linkage: str | None = None
    reqntid: tuple[int, int, int] | None = None
    maxntid: tuple[int, int, int] | None = None
    directives: dict[str, tuple[int, ...]] = field(default_factory=dict)
    registers: dict[str, RegisterDecl] = field(default_factory=dict)
    shared: tuple[VariableDecl, ...] = ()
    local: tuple[VariableDecl, ...] = ()
    body: tuple[Instruction, ...] | None = ()
    labels: dict[str, int] = field(default_factory=dict)
    line: int = 0

    @property
    def is_entry(self) -> bool:
        return self.kind == "entry"

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)


@dataclass(eq=False)
class Module:
    """A parsed PTX module (one ``.ptx`` text).

    ``version`` is ``(major, minor)`` from ``.version``; ``target`` the first
    ``.target`` name (``"sm_80"``, ``"sm_90a"``), ``target_options`` the rest
    (``("debug",)``); ``variables`` the module-scope ``.global``/``.const``/
    ``.shared`` declarations; ``functions`` maps name to :class:`Function` in
    source order (a prototype is replaced by the definition).
    """

    version: tuple[int, int]
    target: str
    target_options: tuple[str, ...] = ()
    address_size: int = 64
    variables: tuple[VariableDecl, ...] = ()
    functions: dict[str, Function] = field(default_factory=dict)

    @property
    def entries(self) -> tuple[Function, ...]:
        return tuple(f for f in self.functions.values() if f.kind == "entry")

    def entry(self, name: str) -> Function:
        """The kernel called ``name``; ``KeyError`` listing the kernels if absent."""
        f = self.functions.get(name)
        if f is None or f.kind != "entry":
            raise KeyError(f"no .entry {name!r}; the module has {[e.name for e in self.entries]}")
        return f

    def variable(self, name: str) -> VariableDecl:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)

    @property
    def sm(self) -> int:
        """The numeric SM version of ``target`` (``"sm_90a"`` -> 90)."""
        digits = "".join(ch for ch in self.target.removeprefix("sm_") if ch.isdigit())
        return int(digits) if digits else 0


__all__ = [
    "Address", "CallArgs", "FloatImmediate", "Function", "Guard", "Immediate", "Instruction",
    "LabelRef", "Module", "Negated", "Operand", "Param", "PredicatePair", "Register",
    "RegisterDecl", "Sink", "SpecialRegister", "Symbol", "SymbolOffset", "TYPE_SIZES",
    "VariableDecl", "Vector",
]
