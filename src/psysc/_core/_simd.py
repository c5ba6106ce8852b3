"""Short-vector additions and a prefetch for the compiled kernels.

Numba leaves LLVM's SLP vectoriser off, so ``acc[i + 0] += v[j + 0]; ...; acc[i + 7] += v[j + 7]`` compiles to
eight scalar additions. :func:`add_from4` and :func:`add_from8` emit the same additions as one 4- or 8-wide
vector load, add and store, which LLVM lowers to the widest vector unit of the machine (an AVX2 or AVX-512
operation, NEON pairs on ARM), from another array of the same precision (float64 or float32), so every lane is
one ordinary IEEE addition in that precision, bit for bit the scalar one. :func:`add_scaled4` and
:func:`add_scaled8` add the float64 products of a vector and a number (float64 arrays);
:func:`scale_into4` and :func:`scale_into8` write such products, rounded to the precision of the destination.
:func:`prefetch` asks for the cache line of an array element ahead of its use.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

_ELEMENT = {types.float64: ir.DoubleType(), types.float32: ir.FloatType()}


def _pointer_at(context, builder, array_type, array, offset, pointee):
    """An LLVM pointer to ``array[offset]``, read as a ``pointee`` (a vector of lanes, or a byte)."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [offset]), pointee.as_pointer())


def _vector_of(builder, vec_type, values):
    """An LLVM vector of ``vec_type`` with ``values`` in its lanes."""
    vec = ir.Constant(vec_type, None)
    for i, value in enumerate(values):
        vec = builder.insert_element(vec, value, ir.Constant(ir.IntType(32), i))
    return vec


def _vector_add_scaled(width: int):
    def typer(typingctx, dst, offset, src, src_offset, x):
        ok = all(isinstance(a, types.Array) and a.dtype == types.float64 and a.layout == "C" for a in (dst, src))
        if not ok or not isinstance(x, types.Float):
            return None
        sig = types.void(dst, types.intp, src, types.intp, types.float64)

        def codegen(context, builder, signature, args):
            wide = ir.VectorType(ir.DoubleType(), width)
            src_ptr = _pointer_at(context, builder, signature.args[2], args[2], args[3], wide)
            product = builder.fmul(builder.load(src_ptr, align=8), _vector_of(builder, wide, [args[4]] * width))
            dst_ptr = _pointer_at(context, builder, signature.args[0], args[0], args[1], wide)
            builder.store(builder.fadd(builder.load(dst_ptr, align=8), product), dst_ptr, align=8)
            return context.get_dummy_value()

        return sig, codegen

    return typer


@intrinsic
def add_scaled4(typingctx, dst, offset, src, src_offset, x):
    """``dst[offset + i] += src[src_offset + i] * x`` for ``i < 4``, in float64.

    One vector load, multiplication, addition and store: each lane is the rounded product, then the rounded sum
    (no fused multiply-add), bit for bit the scalar ``dst[j] += src[k] * x``. ``dst`` and ``src`` float64,
    C-contiguous; no bounds check.
    """
    return _vector_add_scaled(4)(typingctx, dst, offset, src, src_offset, x)


@intrinsic
def add_scaled8(typingctx, dst, offset, src, src_offset, x):
    """``dst[offset + i] += src[src_offset + i] * x`` for ``i < 8``, in float64 (see :func:`add_scaled4`)."""
    return _vector_add_scaled(8)(typingctx, dst, offset, src, src_offset, x)


def _vector_add_from(width: int):
    def typer(typingctx, dst, offset, src, src_offset):
        ok = all(isinstance(a, types.Array) and a.dtype in _ELEMENT and a.layout == "C" for a in (dst, src))
        if not ok or dst.dtype != src.dtype:
            return None
        sig = types.void(dst, types.intp, src, types.intp)

        def codegen(context, builder, signature, args):
            vec_type = ir.VectorType(_ELEMENT[signature.args[0].dtype], width)
            dst_ptr = _pointer_at(context, builder, signature.args[0], args[0], args[1], vec_type)
            src_ptr = _pointer_at(context, builder, signature.args[2], args[2], args[3], vec_type)
            total = builder.fadd(builder.load(dst_ptr, align=4), builder.load(src_ptr, align=4))
            builder.store(total, dst_ptr, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return typer


@intrinsic
def add_from4(typingctx, dst, offset, src, src_offset):
    """``dst[offset + i] += src[src_offset + i]`` for ``i < 4``.

    Arrays of one precision, C-contiguous; no bounds check.
    """
    return _vector_add_from(4)(typingctx, dst, offset, src, src_offset)


@intrinsic
def add_from8(typingctx, dst, offset, src, src_offset):
    """``dst[offset + i] += src[src_offset + i]`` for ``i < 8`` (see :func:`add_from4`)."""
    return _vector_add_from(8)(typingctx, dst, offset, src, src_offset)


def _vector_scale(width: int):
    def typer(typingctx, dst, offset, src, src_offset, x):
        ok = all(isinstance(a, types.Array) and a.dtype in _ELEMENT and a.layout == "C" for a in (dst, src))
        if not ok or src.dtype != types.float64 or not isinstance(x, types.Float):
            return None
        sig = types.void(dst, types.intp, src, types.intp, types.float64)

        def codegen(context, builder, signature, args):
            wide = ir.VectorType(ir.DoubleType(), width)
            dst_type = ir.VectorType(_ELEMENT[signature.args[0].dtype], width)
            src_ptr = _pointer_at(context, builder, signature.args[2], args[2], args[3], wide)
            product = builder.fmul(builder.load(src_ptr, align=8), _vector_of(builder, wide, [args[4]] * width))
            if signature.args[0].dtype != types.float64:
                product = builder.fptrunc(product, dst_type)
            dst_ptr = _pointer_at(context, builder, signature.args[0], args[0], args[1], dst_type)
            builder.store(product, dst_ptr, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return typer


@intrinsic
def scale_into4(typingctx, dst, offset, src, src_offset, x):
    """``dst[offset + i] = src[src_offset + i] * x`` for ``i < 4``, as one vector.

    Float64 products (``src`` float64), rounded to the precision of ``dst``, written in one store (so that a vector
    load of them right after is forwarded from the store, not stalled). C-contiguous arrays; no bounds check.
    """
    return _vector_scale(4)(typingctx, dst, offset, src, src_offset, x)


@intrinsic
def scale_into8(typingctx, dst, offset, src, src_offset, x):
    """``dst[offset + i] = src[src_offset + i] * x`` for ``i < 8`` (see :func:`scale_into4`)."""
    return _vector_scale(8)(typingctx, dst, offset, src, src_offset, x)


@intrinsic
def prefetch(typingctx, arr, offset):
    """Ask for the cache line that holds ``arr[offset]``.

    A hint: no effect on results; an offset past the end of the array reads nothing.
    """
    if not (isinstance(arr, types.Array) and arr.layout == "C"):
        return None
    sig = types.void(arr, types.intp)

    def codegen(context, builder, signature, args):
        byte = ir.IntType(8)
        byte_ptr = byte.as_pointer()
        ptr = _pointer_at(context, builder, signature.args[0], args[0], args[1], byte)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
        fn = builder.module.declare_intrinsic(f"llvm.prefetch.{byte_ptr.intrinsic_name}", fnty=fnty)
        # read, keep in every cache level, data cache
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen
