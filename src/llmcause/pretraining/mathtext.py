"""A seeded generator of arithmetic and algebra text: the corpus's ``math`` domain.

Exercises with worked answers (sums, products, long division, fractions,
gcd and lcm, powers, linear equations and 2×2 systems, expanding and
factoring quadratics, derivatives, evaluating polynomials, percentages).
Only ``random.Random.random`` is used, whose stream Python keeps the same
across versions for a given integer seed, so the bytes are reproducible.
"""

from __future__ import annotations

import math
import random

__all__ = ["math_text"]


class _Draw:
    def __init__(self, seed: int):
        self._rng = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return lo + int(self._rng.random() * (hi - lo + 1))

    def nonzero(self, lo: int, hi: int) -> int:
        while True:
            v = self.int(lo, hi)
            if v != 0:
                return v

    def pick(self, items):
        return items[int(self._rng.random() * len(items))]


def _term(coef: int, power: int, var: str = "x", first: bool = False) -> str:
    if coef == 0:
        return ""
    sign = "-" if coef < 0 else ("" if first else "+")
    mag = abs(coef)
    if power == 0:
        body = str(mag)
    else:
        body = ("" if mag == 1 else str(mag)) + var + ("" if power == 1 else f"^{power}")
    return f"{sign}{body}" if first else f" {sign} {body}"


def _poly(coefs: list[int], var: str = "x") -> str:
    """Coefficients from the highest power down, e.g. [2, 0, -3] -> '2x^2 - 3'."""
    deg = len(coefs) - 1
    out, first = "", True
    for i, c in enumerate(coefs):
        if c == 0:
            continue
        out += _term(c, deg - i, var, first)
        first = False
    return out or "0"


def _signed(v: int) -> str:
    return f"+ {v}" if v >= 0 else f"- {-v}"


def _par(v: int) -> str:
    return f"({v})" if v < 0 else str(v)


def _arithmetic(d: _Draw) -> str:
    a, b = d.int(2, 9999), d.int(2, 9999)
    op = d.pick("+-*/")
    if op == "+":
        return f"Compute {a} + {b}.\nAnswer: {a} + {b} = {a + b}.\n"
    if op == "-":
        return f"Compute {a} - {b}.\nAnswer: {a} - {b} = {a - b}.\n"
    if op == "*":
        a, b = d.int(2, 999), d.int(2, 99)
        return f"Compute {a} * {b}.\nAnswer: {a} * {b} = {a * b}.\n"
    b = d.int(2, 99)
    q, r = divmod(a, b)
    return f"Divide {a} by {b}.\nAnswer: {a} = {b} * {q} + {r}, so the quotient is {q} and the remainder is {r}.\n"


def _fraction(d: _Draw) -> str:
    g = d.int(2, 12)
    p, q = d.int(1, 20) * g, d.int(2, 20) * g
    k = math.gcd(p, q)
    a, b, c, e = d.int(1, 9), d.int(2, 9), d.int(1, 9), d.int(2, 9)
    num, den = a * e + c * b, b * e
    k2 = math.gcd(num, den)
    return (f"Simplify {p}/{q}.\nAnswer: gcd({p}, {q}) = {k}, so {p}/{q} = {p // k}/{q // k}.\n"
            f"Add {a}/{b} + {c}/{e}.\nAnswer: {a}/{b} + {c}/{e} = ({a}*{e} + {c}*{b})/({b}*{e}) = {num}/{den}"
            + (f" = {num // k2}/{den // k2}.\n" if k2 > 1 else ".\n"))


def _gcd_lcm(d: _Draw) -> str:
    a, b = d.int(6, 500), d.int(6, 500)
    g = math.gcd(a, b)
    return f"Find gcd({a}, {b}) and lcm({a}, {b}).\nAnswer: gcd = {g}, lcm = {a * b // g}.\n"


def _power(d: _Draw) -> str:
    base, exp = d.int(2, 12), d.int(2, 6)
    return f"Evaluate {base}^{exp}.\nAnswer: {base}^{exp} = {base ** exp}.\n"


def _linear(d: _Draw) -> str:
    a, x = d.nonzero(-12, 12), d.int(-20, 20)
    b = d.int(-50, 50)
    c = a * x + b
    var = d.pick("xyzt")
    step = f"subtract {b} from both sides" if b >= 0 else f"add {-b} to both sides"
    return (f"Solve {_poly([a, b], var)} = {c}.\nAnswer: {step}: {_poly([a, 0], var)} = {c - b}; "
            f"divide by {a}: {var} = {x}.\n")


def _system(d: _Draw) -> str:
    x, y = d.int(-9, 9), d.int(-9, 9)
    while True:
        a, b, c, e = d.nonzero(-6, 6), d.nonzero(-6, 6), d.nonzero(-6, 6), d.nonzero(-6, 6)
        det = a * e - b * c
        if det != 0:
            break
    r1, r2 = a * x + b * y, c * x + e * y
    return (f"Solve the system {_poly([a, 0], 'x')} {_signed(b)}y = {r1} and {_poly([c, 0], 'x')} {_signed(e)}y "
            f"= {r2}.\nAnswer: the determinant is {_par(a)}*{_par(e)} - {_par(b)}*{_par(c)} = {det}; by Cramer's rule x = {x} and "
            f"y = {y}.\n")


def _quadratic(d: _Draw) -> str:
    r, s = d.int(-12, 12), d.int(-12, 12)
    b, c = -(r + s), r * s
    poly = _poly([1, b, c])
    if d.int(0, 1):
        return (f"Expand (x {_signed(-r)})(x {_signed(-s)}).\nAnswer: x^2 {_signed(-s)}x {_signed(-r)}x "
                f"{_signed(r * s)} = {poly}.\n")
    return (f"Factor {poly}.\nAnswer: two numbers with sum {-b} and product {c} are {r} and {s}, so "
            f"{poly} = (x {_signed(-r)})(x {_signed(-s)}); the roots are x = {r} and x = {s}.\n")


def _derivative(d: _Draw) -> str:
    deg = d.int(1, 4)
    coefs = [d.nonzero(-9, 9)] + [d.int(-9, 9) for _ in range(deg)]
    deriv = [c * (deg - i) for i, c in enumerate(coefs[:-1])]
    return f"Differentiate f(x) = {_poly(coefs)}.\nAnswer: f'(x) = {_poly(deriv)}.\n"


def _evaluate(d: _Draw) -> str:
    deg = d.int(1, 3)
    coefs = [d.nonzero(-9, 9)] + [d.int(-9, 9) for _ in range(deg)]
    x = d.int(-5, 5)
    value = 0
    for c in coefs:
        value = value * x + c
    return f"Evaluate p(x) = {_poly(coefs)} at x = {x}.\nAnswer: p({x}) = {value}.\n"


def _percent(d: _Draw) -> str:
    p, base = d.int(1, 99), d.int(2, 400) * 5
    num = p * base
    whole, rest = divmod(num, 100)
    value = f"{whole}" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0")
    return f"What is {p}% of {base}?\nAnswer: {p}/100 * {base} = {value}.\n"


_KINDS = (_arithmetic, _arithmetic, _fraction, _gcd_lcm, _power, _linear, _system, _quadratic, _derivative,
          _evaluate, _percent)


def math_text(seed: int, n_bytes: int) -> bytes:
    """``n_bytes`` bytes of numbered exercises with answers, reproducible from ``seed``."""
    if n_bytes < 0:
        raise ValueError("n_bytes must be non-negative")
    d = _Draw(seed)
    parts, size, k = [], 0, 0
    while size < n_bytes:
        k += 1
        block = f"Exercise {k}. " + d.pick(_KINDS)(d) + "\n"
        parts.append(block)
        size += len(block)
    return "".join(parts).encode("ascii")[:n_bytes]
