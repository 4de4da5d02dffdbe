/* The native codec: Cadenza's Avro records encoded and decoded in C.
 *
 * Why: the generated Python codec (_compiled.py) was still more than half of the
 * engine's per-start CPU and most of the visibility projection's (BENCHMARKS.md,
 * entry 34). This module walks the same schema plan that _compiled.py builds,
 * with the same datum shapes, the same bytes and the same errors; the tests run
 * every case through both and against fastavro.
 *
 * A plan is made in Python (`_Gen.native_plan`) and handed to `Plan(nodes,
 * records, malformed)`:
 *
 *   nodes:   list of tuples, one per type occurrence, referring to each other by
 *            index:
 *              (K_NULL..K_STRING,)
 *              (K_ENUM, name, symbols tuple, {symbol: index})
 *              (K_ARRAY, item node, envelope header bytes or None, items take a byte)
 *              (K_MAP, value node)
 *              (K_RECORD, record index)
 *              (K_OPTIONAL, null branch index, other node, single record name or None)
 *              (K_UNION, null branch index or -1, record names tuple,
 *               branches tuple (None or (name, record index)), {name: branch index})
 *   records: list, by record index, of None (an enum's slot) or
 *            (full name, ((field name, node, mode, default), ...)) with mode
 *            0 = required, 1 = default when missing, 2 = None when missing.
 *   malformed: the exception class raised for bytes that cannot be a body.
 *
 * `Plan.codec(i)` returns a Codec with `write(out: bytearray, datum)` and
 * `read(data, pos) -> (datum, end)`, the interface of CompiledCodec.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum {
    K_NULL = 0, K_BOOL, K_INT, K_LONG, K_FLOAT, K_DOUBLE, K_BYTES, K_STRING,
    K_ENUM, K_ARRAY, K_MAP, K_RECORD, K_OPTIONAL, K_UNION, K_COUNT
};

typedef struct Node Node;
struct Node {
    int kind;
    int flag;              /* ARRAY: items take >= 1 byte; OPTIONAL/UNION: null index */
    Node *inner;           /* ARRAY items, MAP values, OPTIONAL's other branch */
    Py_ssize_t rec;        /* RECORD: record index */
    PyObject *name;        /* ENUM: its name; OPTIONAL: the single record's name or NULL */
    PyObject *symbols;     /* ENUM: tuple of str */
    PyObject *lookup;      /* ENUM: {symbol: index}; UNION: {name: branch index} */
    PyObject *header;      /* ARRAY of envelopes: their single-object header, or NULL */
    PyObject *names;       /* UNION: the record names, for messages */
    Py_ssize_t nbranch;    /* UNION */
    PyObject **bname;      /* UNION: per branch, the record name or NULL (null branch) */
    Py_ssize_t *brec;      /* UNION: per branch, the record index */
};

typedef struct {
    PyObject *name;        /* NULL: not a record (an enum's slot) */
    Py_ssize_t nfields;
    PyObject **fname;
    Node **ftype;
    int *fmode;
    PyObject **fdefault;
} Rec;

typedef struct {
    PyObject_HEAD
    PyObject *keep;        /* (nodes, records, malformed): every borrowed pointer lives here */
    PyObject *malformed;
    Py_ssize_t nnodes, nrecs;
    Node *nodes;
    Rec *recs;
} Plan;

typedef struct {
    PyObject_HEAD
    Plan *plan;
    Py_ssize_t rec;
} Codec;

static PyTypeObject PlanType;
static PyTypeObject CodecType;

/* ------------------------------------------------------------------ output buffer */

typedef struct {
    char *p;
    Py_ssize_t len, cap;
    char stack[2048];
} Buf;

static void buf_init(Buf *b) { b->p = b->stack; b->len = 0; b->cap = sizeof b->stack; }

static void buf_free(Buf *b) { if (b->p != b->stack) PyMem_Free(b->p); }

static int buf_grow(Buf *b, Py_ssize_t need) {
    Py_ssize_t cap = b->cap;
    while (cap - b->len < need) {
        if (cap > PY_SSIZE_T_MAX / 2) { PyErr_NoMemory(); return -1; }
        cap *= 2;
    }
    char *p = PyMem_Malloc(cap);
    if (p == NULL) { PyErr_NoMemory(); return -1; }
    memcpy(p, b->p, b->len);
    buf_free(b);
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const char *s, Py_ssize_t n) {
    if (b->cap - b->len < n && buf_grow(b, n) < 0) return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static inline int buf_byte(Buf *b, unsigned char c) {
    if (b->cap == b->len && buf_grow(b, 1) < 0) return -1;
    b->p[b->len++] = (char)c;
    return 0;
}

static inline int buf_long(Buf *b, int64_t n) {
    uint64_t z = ((uint64_t)n << 1) ^ (uint64_t)(n >> 63);
    if (b->cap - b->len < 10 && buf_grow(b, 10) < 0) return -1;
    unsigned char *o = (unsigned char *)b->p + b->len;
    while (z > 0x7F) {
        *o++ = (unsigned char)((z & 0x7F) | 0x80);
        z >>= 7;
    }
    *o++ = (unsigned char)z;
    b->len = (char *)o - b->p;
    return 0;
}

/* ------------------------------------------------------------------ writer */

static int w_record(Plan *P, Buf *b, Py_ssize_t rec, PyObject *d);

static int w_long_value(Buf *b, PyObject *v, int is_int) {
    if (!PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%R is not an integer (Avro %s)", v, is_int ? "int" : "long");
        return -1;
    }
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (n == -1 && PyErr_Occurred()) return -1;
    if (overflow || (is_int && (n < INT32_MIN || n > INT32_MAX))) {
        PyErr_Format(PyExc_OverflowError, "%R does not fit in an Avro %s", v, is_int ? "int" : "long");
        return -1;
    }
    return buf_long(b, (int64_t)n);
}

static int w_text(Buf *b, const char *s, Py_ssize_t n) {
    if (buf_long(b, n) < 0) return -1;
    return buf_put(b, s, n);
}

static int w_string(Buf *b, PyObject *v) {
    if (!PyUnicode_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%R is not a string", v);
        return -1;
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(v, &n);
    if (s == NULL) return -1;
    return w_text(b, s, n);
}

static int w_spliced(Plan *P, Buf *b, Node *items, PyObject *item) {
    /* An envelope already encoded with the current schema: copy its body. */
    Py_ssize_t hl = PyBytes_GET_SIZE(items->header), n = PyBytes_GET_SIZE(item);
    const char *s = PyBytes_AS_STRING(item);
    if (n < hl || memcmp(s, PyBytes_AS_STRING(items->header), hl) != 0) {
        char hex[21];
        Py_ssize_t shown = n < 10 ? n : 10;
        for (Py_ssize_t i = 0; i < shown; i++) sprintf(hex + 2 * i, "%02x", (unsigned char)s[i]);
        hex[2 * shown] = 0;
        PyErr_Format(P->malformed,
                     "an already encoded %S must be its single-object encoding with the current "
                     "schema (header %s is another schema's or not one)",
                     P->recs[items->inner->rec].name, hex);
        return -1;
    }
    return buf_put(b, s + hl, n - hl);
}

static PyObject *joined_names(Node *t) {
    PyObject *sep = PyUnicode_FromString(", ");
    if (sep == NULL) return NULL;
    PyObject *joined = PyUnicode_Join(sep, t->names);
    Py_DECREF(sep);
    return joined;
}

static int w_node(Plan *P, Buf *b, Node *t, PyObject *v) {
    switch (t->kind) {
    case K_NULL:
        if (v != Py_None) {
            PyErr_Format(PyExc_TypeError, "%R is not None (Avro null)", v);
            return -1;
        }
        return 0;
    case K_BOOL:
        if (v == Py_True) return buf_byte(b, 1);
        if (v == Py_False) return buf_byte(b, 0);
        PyErr_Format(PyExc_TypeError, "%R is not a boolean", v);
        return -1;
    case K_INT:
    case K_LONG:
        return w_long_value(b, v, t->kind == K_INT);
    case K_FLOAT:
    case K_DOUBLE: {
        double x = PyFloat_AsDouble(v);
        if (x == -1.0 && PyErr_Occurred()) return -1;
        char tmp[8];
        if (t->kind == K_DOUBLE) {
            if (PyFloat_Pack8(x, tmp, 1) < 0) return -1;
            return buf_put(b, tmp, 8);
        }
        if (PyFloat_Pack4(x, tmp, 1) < 0) return -1;
        return buf_put(b, tmp, 4);
    }
    case K_STRING:
        return w_string(b, v);
    case K_BYTES: {
        if (PyBytes_Check(v)) return w_text(b, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v));
        Py_buffer view;
        if (PyObject_GetBuffer(v, &view, PyBUF_SIMPLE) < 0) return -1;
        int rc = w_text(b, view.buf, view.len);
        PyBuffer_Release(&view);
        return rc;
    }
    case K_ENUM: {
        PyObject *index = PyDict_GetItemWithError(t->lookup, v);
        if (index == NULL) {
            if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, v);
            return -1;
        }
        return buf_long(b, PyLong_AsLongLong(index));
    }
    case K_ARRAY: {
        int truth = PyObject_IsTrue(v);
        if (truth < 0) return -1;
        if (truth) {
            PyObject *seq = PySequence_Fast(v, "an Avro array takes a list or another sequence");
            if (seq == NULL) return -1;
            Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
            int rc = buf_long(b, n);
            for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
                /* Item by item, held: an item's own code (__float__...) could change
                   the list under us. */
                if (PySequence_Fast_GET_SIZE(seq) != n) {
                    PyErr_SetString(PyExc_RuntimeError, "a list changed size while it was encoded");
                    rc = -1;
                    break;
                }
                PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
                Py_INCREF(item);
                if (t->header != NULL && PyBytes_CheckExact(item))
                    rc = w_spliced(P, b, t, item);
                else
                    rc = w_node(P, b, t->inner, item);
                Py_DECREF(item);
            }
            Py_DECREF(seq);
            if (rc < 0) return -1;
        }
        return buf_byte(b, 0);
    }
    case K_MAP: {
        int truth = PyObject_IsTrue(v);
        if (truth < 0) return -1;
        if (truth) {
            PyObject *pairs = PyMapping_Items(v);
            if (pairs == NULL) return -1;
            Py_ssize_t n = PyList_GET_SIZE(pairs);
            int rc = buf_long(b, n);
            for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
                PyObject *pair = PyList_GET_ITEM(pairs, i);
                if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
                    PyErr_SetString(PyExc_TypeError, "a map's items() must give (key, value) pairs");
                    rc = -1;
                    break;
                }
                rc = w_string(b, PyTuple_GET_ITEM(pair, 0));
                if (rc == 0) rc = w_node(P, b, t->inner, PyTuple_GET_ITEM(pair, 1));
            }
            Py_DECREF(pairs);
            if (rc < 0) return -1;
        }
        return buf_byte(b, 0);
    }
    case K_RECORD:
        return w_record(P, b, t->rec, v);
    case K_OPTIONAL: {
        if (v == Py_None) return buf_byte(b, (unsigned char)(t->flag << 1));
        if (buf_byte(b, (unsigned char)((1 - t->flag) << 1)) < 0) return -1;
        if (t->name != NULL && PyTuple_CheckExact(v)) {
            /* As fastavro: a single record also takes the ("full.Name", {...}) form. */
            if (PyTuple_GET_SIZE(v) != 2) {
                PyErr_Format(PyExc_ValueError, "a union tuple is (name, datum), got %zd items",
                             PyTuple_GET_SIZE(v));
                return -1;
            }
            int same = PyObject_RichCompareBool(PyTuple_GET_ITEM(v, 0), t->name, Py_EQ);
            if (same < 0) return -1;
            if (!same) {
                PyErr_Format(PyExc_ValueError, "union has no branch %R; branches: %S",
                             PyTuple_GET_ITEM(v, 0), t->name);
                return -1;
            }
            v = PyTuple_GET_ITEM(v, 1);
        }
        return w_node(P, b, t->inner, v);
    }
    case K_UNION: {
        if (v == Py_None && t->flag >= 0) return buf_long(b, t->flag);
        if (!PyTuple_CheckExact(v) || PyTuple_GET_SIZE(v) != 2) {
            PyObject *joined = joined_names(t);
            if (joined == NULL) return -1;
            PyErr_Format(PyExc_TypeError,
                         "a union of several records takes a ('full.Name', {...}) tuple, got %s; "
                         "branches: %U",
                         PyTuple_CheckExact(v) ? "a tuple of another length" : Py_TYPE(v)->tp_name,
                         joined);
            Py_DECREF(joined);
            return -1;
        }
        PyObject *name = PyTuple_GET_ITEM(v, 0);
        PyObject *index = PyDict_GetItemWithError(t->lookup, name);
        if (index == NULL) {
            if (PyErr_Occurred()) return -1;
            PyObject *joined = joined_names(t);
            if (joined == NULL) return -1;
            PyErr_Format(PyExc_ValueError, "union has no branch %R; branches: %U", name, joined);
            Py_DECREF(joined);
            return -1;
        }
        Py_ssize_t i = PyLong_AsSsize_t(index);
        if (buf_long(b, i) < 0) return -1;
        return w_record(P, b, t->brec[i], PyTuple_GET_ITEM(v, 1));
    }
    }
    PyErr_SetString(PyExc_SystemError, "cadenza native codec: bad node kind");
    return -1;
}

static int w_record(Plan *P, Buf *b, Py_ssize_t rec, PyObject *d) {
    Rec *r = &P->recs[rec];
    if (Py_EnterRecursiveCall(" while encoding an Avro record")) return -1;
    int exact = PyDict_Check(d);
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < r->nfields; i++) {
        PyObject *v;
        if (exact) {
            v = PyDict_GetItemWithError(d, r->fname[i]);
            if (v == NULL && PyErr_Occurred()) { rc = -1; break; }
            Py_XINCREF(v);
        } else {
            v = PyObject_GetItem(d, r->fname[i]);
            if (v == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_KeyError)) { rc = -1; break; }
                PyErr_Clear();
            }
        }
        if (v == NULL) {
            if (r->fmode[i] == 0) {
                PyErr_SetObject(PyExc_KeyError, r->fname[i]);
                rc = -1;
                break;
            }
            v = r->fmode[i] == 1 ? r->fdefault[i] : Py_None;
            Py_INCREF(v);
        }
        rc = w_node(P, b, r->ftype[i], v);
        Py_DECREF(v);
    }
    Py_LeaveRecursiveCall();
    return rc;
}

/* ------------------------------------------------------------------ reader */

typedef struct {
    const unsigned char *p;
    Py_ssize_t pos, len;
} In;

static int truncated(Plan *P) {
    PyErr_SetString(P->malformed, "body ends early (truncated record?)");
    return -1;
}

static inline int r_long(Plan *P, In *in, int64_t *out) {
    const unsigned char *p = in->p;
    Py_ssize_t pos = in->pos;
    if (pos < in->len && p[pos] < 0x80) {
        unsigned x = p[pos];
        *out = (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
        in->pos = pos + 1;
        return 0;
    }
    uint64_t z = 0;
    for (int shift = 0;; shift += 7) {
        if (shift > 63) {
            PyErr_SetString(P->malformed, "varint longer than 10 bytes");
            return -1;
        }
        if (pos >= in->len) return truncated(P);
        unsigned x = p[pos++];
        z |= (uint64_t)(x & 0x7F) << shift;
        if (x < 0x80) {
            if (shift == 63 && x > 1) {
                PyErr_SetString(P->malformed, "varint does not fit in a long (64 bits)");
                return -1;
            }
            break;
        }
    }
    *out = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    in->pos = pos;
    return 0;
}

static PyObject *r_record(Plan *P, In *in, Py_ssize_t rec);

static int r_length(Plan *P, In *in, int64_t *n) {
    if (r_long(P, in, n) < 0) return -1;
    if (*n < 0) {
        PyErr_Format(P->malformed, "negative length %lld", (long long)*n);
        return -1;
    }
    if (*n > in->len - in->pos) {
        PyErr_Format(P->malformed, "a length of %lld runs past the end (truncated record?)",
                     (long long)*n);
        return -1;
    }
    return 0;
}

static PyObject *r_string(Plan *P, In *in) {
    int64_t n;
    if (r_length(P, in, &n) < 0) return NULL;
    PyObject *s = PyUnicode_DecodeUTF8((const char *)in->p + in->pos, (Py_ssize_t)n, NULL);
    in->pos += (Py_ssize_t)n;
    return s;
}

static PyObject *r_node(Plan *P, In *in, Node *t) {
    switch (t->kind) {
    case K_NULL:
        Py_RETURN_NONE;
    case K_BOOL: {
        if (in->pos >= in->len) { truncated(P); return NULL; }
        unsigned x = in->p[in->pos++];
        if (x > 1) return PyErr_Format(P->malformed, "boolean byte %u", x);
        return PyBool_FromLong(x);
    }
    case K_INT:
    case K_LONG: {
        int64_t n;
        if (r_long(P, in, &n) < 0) return NULL;
        return PyLong_FromLongLong(n);
    }
    case K_FLOAT:
    case K_DOUBLE: {
        Py_ssize_t width = t->kind == K_DOUBLE ? 8 : 4;
        if (in->len - in->pos < width) { truncated(P); return NULL; }
        const char *s = (const char *)in->p + in->pos;
        double x = width == 8 ? PyFloat_Unpack8(s, 1) : PyFloat_Unpack4(s, 1);
        if (x == -1.0 && PyErr_Occurred()) return NULL;
        in->pos += width;
        return PyFloat_FromDouble(x);
    }
    case K_STRING:
        return r_string(P, in);
    case K_BYTES: {
        int64_t n;
        if (r_length(P, in, &n) < 0) return NULL;
        PyObject *s = PyBytes_FromStringAndSize((const char *)in->p + in->pos, (Py_ssize_t)n);
        in->pos += (Py_ssize_t)n;
        return s;
    }
    case K_ENUM: {
        int64_t i;
        if (r_long(P, in, &i) < 0) return NULL;
        if (i < 0 || i >= PyTuple_GET_SIZE(t->symbols))
            return PyErr_Format(P->malformed, "enum index %lld of %S", (long long)i, t->name);
        PyObject *s = PyTuple_GET_ITEM(t->symbols, (Py_ssize_t)i);
        Py_INCREF(s);
        return s;
    }
    case K_ARRAY:
    case K_MAP: {
        int is_map = t->kind == K_MAP;
        PyObject *out = is_map ? PyDict_New() : PyList_New(0);
        if (out == NULL) return NULL;
        for (;;) {
            int64_t count, skip;
            if (r_long(P, in, &count) < 0) goto fail;
            if (count == 0) break;
            if (count < 0) {
                if (count == INT64_MIN) {
                    PyErr_SetString(P->malformed, "block count out of range");
                    goto fail;
                }
                count = -count;
                if (r_long(P, in, &skip) < 0) goto fail; /* block size in bytes: not needed */
            }
            if ((is_map || t->flag) && count > in->len - in->pos) {
                PyErr_Format(P->malformed, "a block of %lld items runs past the end "
                             "(truncated record?)", (long long)count);
                goto fail;
            }
            for (int64_t i = 0; i < count; i++) {
                if (is_map) {
                    PyObject *key = r_string(P, in);
                    if (key == NULL) goto fail;
                    PyObject *value = r_node(P, in, t->inner);
                    if (value == NULL) { Py_DECREF(key); goto fail; }
                    int rc = PyDict_SetItem(out, key, value);
                    Py_DECREF(key);
                    Py_DECREF(value);
                    if (rc < 0) goto fail;
                } else {
                    PyObject *value = r_node(P, in, t->inner);
                    if (value == NULL) goto fail;
                    int rc = PyList_Append(out, value);
                    Py_DECREF(value);
                    if (rc < 0) goto fail;
                }
            }
        }
        return out;
    fail:
        Py_DECREF(out);
        return NULL;
    }
    case K_RECORD:
        return r_record(P, in, t->rec);
    case K_OPTIONAL: {
        if (in->pos >= in->len) { truncated(P); return NULL; }
        unsigned x = in->p[in->pos++];
        unsigned null_byte = (unsigned)t->flag << 1;
        if (x == null_byte) Py_RETURN_NONE;
        if (x == 2 - null_byte) return r_node(P, in, t->inner);
        return PyErr_Format(P->malformed, "union index byte %u", x);
    }
    case K_UNION: {
        int64_t i;
        if (r_long(P, in, &i) < 0) return NULL;
        if (i < 0 || i >= t->nbranch)
            return PyErr_Format(P->malformed, "union index %lld", (long long)i);
        if (t->bname[i] == NULL) Py_RETURN_NONE;
        PyObject *datum = r_record(P, in, t->brec[i]);
        if (datum == NULL) return NULL;
        PyObject *pair = PyTuple_New(2);
        if (pair == NULL) { Py_DECREF(datum); return NULL; }
        Py_INCREF(t->bname[i]);
        PyTuple_SET_ITEM(pair, 0, t->bname[i]);
        PyTuple_SET_ITEM(pair, 1, datum);
        return pair;
    }
    }
    PyErr_SetString(PyExc_SystemError, "cadenza native codec: bad node kind");
    return NULL;
}

static PyObject *r_record(Plan *P, In *in, Py_ssize_t rec) {
    Rec *r = &P->recs[rec];
    if (Py_EnterRecursiveCall(" while decoding an Avro record")) return NULL;
    PyObject *d = _PyDict_NewPresized(r->nfields);
    if (d == NULL) goto done;
    for (Py_ssize_t i = 0; i < r->nfields; i++) {
        PyObject *v = r_node(P, in, r->ftype[i]);
        if (v == NULL || PyDict_SetItem(d, r->fname[i], v) < 0) {
            Py_XDECREF(v);
            Py_CLEAR(d);
            goto done;
        }
        Py_DECREF(v);
    }
done:
    Py_LeaveRecursiveCall();
    return d;
}

/* ------------------------------------------------------------------ Codec */

static PyObject *codec_write(Codec *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyByteArray_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "write(out: bytearray, datum)");
        return NULL;
    }
    Buf b;
    buf_init(&b);
    if (w_record(self->plan, &b, self->rec, args[1]) < 0) {
        buf_free(&b);
        return NULL;
    }
    PyObject *out = args[0];
    Py_ssize_t old = PyByteArray_GET_SIZE(out);
    if (PyByteArray_Resize(out, old + b.len) < 0) {
        buf_free(&b);
        return NULL;
    }
    memcpy(PyByteArray_AS_STRING(out) + old, b.p, b.len);
    buf_free(&b);
    Py_RETURN_NONE;
}

static PyObject *codec_read(Codec *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "read(data: bytes, pos: int)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *result = NULL;
    if (pos < 0 || pos > view.len) {
        PyErr_Format(PyExc_ValueError, "position %zd is outside the data (%zd bytes)", pos, view.len);
    } else {
        In in = {view.buf, pos, view.len};
        PyObject *datum = r_record(self->plan, &in, self->rec);
        if (datum != NULL) result = Py_BuildValue("(Nn)", datum, in.pos);
    }
    PyBuffer_Release(&view);
    return result;
}

static void codec_dealloc(Codec *self) {
    Py_XDECREF(self->plan);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef codec_methods[] = {
    {"write", (PyCFunction)(void (*)(void))codec_write, METH_FASTCALL,
     "write(out, datum): append the Avro binary body of datum to the bytearray out."},
    {"read", (PyCFunction)(void (*)(void))codec_read, METH_FASTCALL,
     "read(data, pos) -> (datum, end): decode one body starting at pos."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CodecType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "cadenza.schemas._native.Codec",
    .tp_basicsize = sizeof(Codec),
    .tp_dealloc = (destructor)codec_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The native writer and reader of one record schema.",
    .tp_methods = codec_methods,
};

/* ------------------------------------------------------------------ Plan */

static int bad_plan(const char *what) {
    PyErr_Format(PyExc_ValueError, "cadenza native codec: bad plan (%s)", what);
    return -1;
}

static Node *node_at(Plan *P, PyObject *index) {
    Py_ssize_t i = PyLong_AsSsize_t(index);
    if (i == -1 && PyErr_Occurred()) return NULL;
    if (i < 0 || i >= P->nnodes) { bad_plan("node index"); return NULL; }
    return &P->nodes[i];
}

static int rec_index(Plan *P, PyObject *index, Py_ssize_t *out) {
    Py_ssize_t i = PyLong_AsSsize_t(index);
    if (i == -1 && PyErr_Occurred()) return -1;
    if (i < 0 || i >= P->nrecs) return bad_plan("record index");
    *out = i;
    return 0;
}

static int load_node(Plan *P, Node *t, PyObject *spec) {
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 1) return bad_plan("node is not a tuple");
    Py_ssize_t size = PyTuple_GET_SIZE(spec);
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(spec, 0));
    if (kind < 0 || kind >= K_COUNT) return bad_plan("node kind");
    t->kind = (int)kind;
#define ARG(i) PyTuple_GET_ITEM(spec, (i))
    switch (t->kind) {
    case K_ENUM:
        if (size != 4 || !PyTuple_Check(ARG(2)) || !PyDict_Check(ARG(3))) return bad_plan("enum");
        t->name = ARG(1);
        t->symbols = ARG(2);
        t->lookup = ARG(3);
        return 0;
    case K_ARRAY:
        if (size != 4 || (t->inner = node_at(P, ARG(1))) == NULL) return -1;
        if (ARG(2) != Py_None) {
            if (!PyBytes_Check(ARG(2)) || t->inner->kind != K_RECORD) return bad_plan("array header");
            t->header = ARG(2);
        }
        t->flag = PyObject_IsTrue(ARG(3));
        return t->flag < 0 ? -1 : 0;
    case K_MAP:
        if (size != 2 || (t->inner = node_at(P, ARG(1))) == NULL) return -1;
        return 0;
    case K_RECORD:
        if (size != 2) return bad_plan("record");
        return rec_index(P, ARG(1), &t->rec);
    case K_OPTIONAL:
        if (size != 4) return bad_plan("optional");
        t->flag = (int)PyLong_AsLong(ARG(1));
        if (t->flag != 0 && t->flag != 1) return bad_plan("optional null index");
        if ((t->inner = node_at(P, ARG(2))) == NULL) return -1;
        t->name = ARG(3) == Py_None ? NULL : ARG(3);
        return 0;
    case K_UNION: {
        if (size != 5 || !PyTuple_Check(ARG(2)) || !PyTuple_Check(ARG(3)) || !PyDict_Check(ARG(4)))
            return bad_plan("union");
        t->flag = (int)PyLong_AsLong(ARG(1));
        t->names = ARG(2);
        t->lookup = ARG(4);
        PyObject *branches = ARG(3);
        t->nbranch = PyTuple_GET_SIZE(branches);
        t->bname = PyMem_Calloc(t->nbranch ? t->nbranch : 1, sizeof(PyObject *));
        t->brec = PyMem_Calloc(t->nbranch ? t->nbranch : 1, sizeof(Py_ssize_t));
        if (t->bname == NULL || t->brec == NULL) { PyErr_NoMemory(); return -1; }
        for (Py_ssize_t i = 0; i < t->nbranch; i++) {
            PyObject *branch = PyTuple_GET_ITEM(branches, i);
            if (branch == Py_None) continue;
            if (!PyTuple_Check(branch) || PyTuple_GET_SIZE(branch) != 2) return bad_plan("branch");
            t->bname[i] = PyTuple_GET_ITEM(branch, 0);
            if (rec_index(P, PyTuple_GET_ITEM(branch, 1), &t->brec[i]) < 0) return -1;
        }
        /* Every name the writer can look up must lead to a record branch. */
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(t->lookup, &pos, &key, &value)) {
            Py_ssize_t i = PyLong_AsSsize_t(value);
            if (i < 0 || i >= t->nbranch || t->bname[i] == NULL) return bad_plan("union lookup");
        }
        return 0;
    }
    default:
        return 0;
    }
#undef ARG
}

static int load_record(Plan *P, Rec *r, PyObject *spec) {
    if (spec == Py_None) return 0;
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 2 || !PyTuple_Check(PyTuple_GET_ITEM(spec, 1)))
        return bad_plan("record entry");
    PyObject *fields = PyTuple_GET_ITEM(spec, 1);
    Py_ssize_t n = PyTuple_GET_SIZE(fields);
    r->name = PyTuple_GET_ITEM(spec, 0);
    r->nfields = n;
    Py_ssize_t alloc = n ? n : 1;
    r->fname = PyMem_Calloc(alloc, sizeof(PyObject *));
    r->ftype = PyMem_Calloc(alloc, sizeof(Node *));
    r->fmode = PyMem_Calloc(alloc, sizeof(int));
    r->fdefault = PyMem_Calloc(alloc, sizeof(PyObject *));
    if (!r->fname || !r->ftype || !r->fmode || !r->fdefault) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *f = PyTuple_GET_ITEM(fields, i);
        if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) != 4 || !PyUnicode_Check(PyTuple_GET_ITEM(f, 0)))
            return bad_plan("field");
        r->fname[i] = PyTuple_GET_ITEM(f, 0);
        if ((r->ftype[i] = node_at(P, PyTuple_GET_ITEM(f, 1))) == NULL) return -1;
        long mode = PyLong_AsLong(PyTuple_GET_ITEM(f, 2));
        if (mode < 0 || mode > 2) return bad_plan("field mode");
        r->fmode[i] = (int)mode;
        r->fdefault[i] = PyTuple_GET_ITEM(f, 3);
    }
    return 0;
}

static void plan_free_arrays(Plan *P) {
    for (Py_ssize_t i = 0; P->nodes && i < P->nnodes; i++) {
        PyMem_Free(P->nodes[i].bname);
        PyMem_Free(P->nodes[i].brec);
    }
    for (Py_ssize_t i = 0; P->recs && i < P->nrecs; i++) {
        PyMem_Free(P->recs[i].fname);
        PyMem_Free(P->recs[i].ftype);
        PyMem_Free(P->recs[i].fmode);
        PyMem_Free(P->recs[i].fdefault);
    }
    PyMem_Free(P->nodes);
    PyMem_Free(P->recs);
    P->nodes = NULL;
    P->recs = NULL;
}

static PyObject *plan_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *nodes, *records, *malformed;
    if (!PyArg_ParseTuple(args, "O!O!O:Plan", &PyList_Type, &nodes, &PyList_Type, &records,
                          &malformed))
        return NULL;
    if (!PyExceptionClass_Check(malformed)) {
        PyErr_SetString(PyExc_TypeError, "Plan: malformed must be an exception class");
        return NULL;
    }
    Plan *P = (Plan *)type->tp_alloc(type, 0);
    if (P == NULL) return NULL;
    /* Copies, so the Python lists may change later without touching the plan. */
    P->keep = Py_BuildValue("(NNO)", PyList_AsTuple(nodes), PyList_AsTuple(records), malformed);
    if (P->keep == NULL) goto fail;
    P->malformed = malformed;
    PyObject *node_specs = PyTuple_GET_ITEM(P->keep, 0), *rec_specs = PyTuple_GET_ITEM(P->keep, 1);
    P->nnodes = PyTuple_GET_SIZE(node_specs);
    P->nrecs = PyTuple_GET_SIZE(rec_specs);
    P->nodes = PyMem_Calloc(P->nnodes ? P->nnodes : 1, sizeof(Node));
    P->recs = PyMem_Calloc(P->nrecs ? P->nrecs : 1, sizeof(Rec));
    if (P->nodes == NULL || P->recs == NULL) { PyErr_NoMemory(); goto fail; }
    for (Py_ssize_t i = 0; i < P->nnodes; i++)
        if (load_node(P, &P->nodes[i], PyTuple_GET_ITEM(node_specs, i)) < 0) goto fail;
    for (Py_ssize_t i = 0; i < P->nrecs; i++)
        if (load_record(P, &P->recs[i], PyTuple_GET_ITEM(rec_specs, i)) < 0) goto fail;
    /* A record reference must name a record, not an enum's empty slot. */
    for (Py_ssize_t i = 0; i < P->nnodes; i++) {
        Node *t = &P->nodes[i];
        if (t->kind == K_RECORD && P->recs[t->rec].name == NULL) { bad_plan("record slot"); goto fail; }
        for (Py_ssize_t j = 0; t->kind == K_UNION && j < t->nbranch; j++)
            if (t->bname[j] && P->recs[t->brec[j]].name == NULL) { bad_plan("branch slot"); goto fail; }
    }
    return (PyObject *)P;
fail:
    Py_DECREF(P);
    return NULL;
}

static void plan_dealloc(Plan *P) {
    plan_free_arrays(P);
    Py_XDECREF(P->keep);
    Py_TYPE(P)->tp_free((PyObject *)P);
}

static PyObject *plan_codec(Plan *P, PyObject *arg) {
    Py_ssize_t rec;
    if (rec_index(P, arg, &rec) < 0) return NULL;
    if (P->recs[rec].name == NULL) {
        PyErr_SetString(PyExc_ValueError, "Plan.codec: that index is not a record");
        return NULL;
    }
    Codec *c = PyObject_New(Codec, &CodecType);
    if (c == NULL) return NULL;
    Py_INCREF(P);
    c->plan = P;
    c->rec = rec;
    return (PyObject *)c;
}

static PyMethodDef plan_methods[] = {
    {"codec", (PyCFunction)plan_codec, METH_O, "codec(record index) -> Codec"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PlanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "cadenza.schemas._native.Plan",
    .tp_basicsize = sizeof(Plan),
    .tp_dealloc = (destructor)plan_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Plan(nodes, records, malformed): compiled schemas (see the module source).",
    .tp_methods = plan_methods,
    .tp_new = plan_new,
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_native",
    "Cadenza's Avro codec in C (see schemas/_native.c).", -1, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&PlanType) < 0 || PyType_Ready(&CodecType) < 0) return NULL;
    PyObject *m = PyModule_Create(&native_module);
    if (m == NULL) return NULL;
    Py_INCREF(&PlanType);
    if (PyModule_AddObject(m, "Plan", (PyObject *)&PlanType) < 0) {
        Py_DECREF(&PlanType);
        Py_DECREF(m);
        return NULL;
    }
    static const char *kinds[] = {"K_NULL", "K_BOOL", "K_INT", "K_LONG", "K_FLOAT", "K_DOUBLE",
                                  "K_BYTES", "K_STRING", "K_ENUM", "K_ARRAY", "K_MAP",
                                  "K_RECORD", "K_OPTIONAL", "K_UNION"};
    for (int i = 0; i < K_COUNT; i++)
        if (PyModule_AddIntConstant(m, kinds[i], i) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
