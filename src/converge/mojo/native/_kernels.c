/*
 * Compiled inner loops of the native scorer: tree walks (GBM/DRF/XRT, XGBoost), DeepLearning
 * layers, record encoding, and one-row plans that score a whole model (ensembles included) in one
 * call.
 *
 * Trees are decoded from the MOJO's compressed bytes into branch-free node records on first use
 * (or walked from the bytes themselves); other models hand plain arrays over. Sums run in
 * genmodel's order (trees in order from 0.0, as
 * SharedTreeMojoModel.scoreTreeRange; eight interleaved partial sums, as
 * NeuralNetwork.formNNInputs), and the build turns off floating-point contraction, so results are
 * bit-identical to genmodel's and to the NumPy fallback that runs when no C compiler was present.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- trees, walked from their compressed bytes ---------------------------------------------- */

/* The MOJO's own tree encoding (MOJO_FORMAT.md, "Trees"), read in place. One node:
 *   u8 node type | u16 column (0xFFFF: the whole tree is one leaf, f32 value follows) | u8 NA split
 *   direction | split: f32 value, or a 32-bit bitset, or u16 offset + (i32 bit count | u16 byte
 *   count, by MOJO version) + bits; none for NAvsREST | left: f32 leaf, or the left subtree's size
 *   (1-4 bytes) and the subtree | right: f32 leaf, or the subtree.
 * tree_check validates a tree once at load, so the walkers trust every offset they read. */

enum { NBITS_I32 = 1, V1_0 = 2 }; /* flags: bitset sizes as bit counts (mojo >= 1.2); mojo 1.0 */
enum { NA_VS_REST = 1 };

static inline uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static inline uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline double rdf(const uint8_t *p) {
    uint32_t u = rd32(p);
    float f;
    memcpy(&f, &u, 4);
    return (double)f;
}

/* The integer level of x as Java's (int) cast gives it (saturating; -2 for anything negative). */
static inline double level_of(double x) { return trunc(fmin(fmax(x, -2.0), 2147483648.0)); }

/* A bitset split's header at p (equal: 8, a plain 32-bit set; 12, offset and size): its first
 * level, bit count and byte count; returns where the bits start. */
static inline const uint8_t *bitset_at(const uint8_t *p, uint32_t equal, int flags, uint32_t *off,
                                       uint32_t *nbits, uint32_t *nbytes) {
    *off = 0, *nbits = 32, *nbytes = 4;
    if (equal != 12)
        return p;
    *off = rd16(p);
    if (flags & NBITS_I32) {
        *nbits = rd32(p + 2);
        *nbytes = ((*nbits - 1) >> 3) + 1;
        return p + 6;
    }
    *nbytes = rd16(p + 2);
    *nbits = *nbytes * 8;
    return p + 4;
}

/* A walk in progress through one tree for one row. */
typedef struct {
    const uint8_t *p;
    uint32_t s_off, s_bits; /* the last bitset on the path (NAvsREST nodes check its range) */
    int stale;
    double leaf;
} Walk;

/* One node of genmodel's scoreTree, in the MOJO version's dialect: 1 when w reached its leaf. */
static inline int tree_step(Walk *w, const double *x, const double *cat_ub, int flags) {
    const uint8_t *p = w->p;
    const uint32_t nt = p[0], col = rd16(p + 1);
    if (col == 0xFFFF) {
        w->leaf = rdf(p + 3);
        return 1;
    }
    const uint32_t nadir = p[3];
    p += 4;
    const int na_right = !(nadir == 2 || nadir == 4), equal = nt & 0x0C;
    const double v = x[col];
    const int miss = isnan(v) || v >= cat_ub[col];
    int right;
    if (nadir != NA_VS_REST) {
        if (equal == 0) {
            right = miss ? na_right : v >= rdf(p);
            p += 4;
        } else {
            uint32_t off, nbits, nbytes;
            p = bitset_at(p, equal, flags, &off, &nbits, &nbytes);
            w->s_off = off, w->s_bits = nbits, w->stale = 1;
            if (miss) {
                right = na_right;
            } else {
                const double t = level_of(v);
                if (t < 0 || t - (double)off >= (double)nbits) { /* outside the bitset */
                    right = (flags & V1_0) ? 0 : na_right;
                } else if (t < (double)off) { /* below its first level */
                    right = na_right && !(flags & V1_0);
                } else {
                    const uint32_t k = (uint32_t)(t - (double)off);
                    right = (p[k >> 3] >> (k & 7)) & 1;
                }
            }
            p += nbytes;
        }
    } else if (equal == 0 || !w->stale || (flags & V1_0)) {
        right = miss;
    } else { /* NAvsREST after a bitset: a level outside that bitset's range counts as NA */
        const double t = level_of(v);
        right = miss || t < (double)w->s_off || t - (double)w->s_off >= (double)w->s_bits;
    }
    const uint32_t lmask = nt & 0x33;
    if (!right) {
        if (lmask == 48) {
            w->leaf = rdf(p);
            return 1;
        }
        w->p = p + lmask + 1; /* the left subtree follows its size */
        return 0;
    }
    if (lmask == 48) {
        p += 4;
    } else {
        uint32_t size = lmask == 0   ? p[0]
                        : lmask == 1 ? rd16(p)
                        : lmask == 2 ? rd16(p) | ((uint32_t)p[2] << 16)
                                     : rd32(p);
        p += lmask + 1 + size;
    }
    if ((nt & 0xC0) == 0xC0) {
        w->leaf = rdf(p);
        return 1;
    }
    w->p = p;
    return 0;
}

typedef struct {
    const uint8_t *buf;
    Py_ssize_t len, nf;
    int flags;
    const char *why;
} TreeCheck;

/* Recursive structural check of the node at pos; returns the end of its subtree, or -1. */
static Py_ssize_t check_node(TreeCheck *c, Py_ssize_t pos, int depth, int *max_depth) {
    const uint8_t *b = c->buf;
    if (pos + 3 > c->len)
        return c->why = "truncated tree", -1;
    uint32_t nt = b[pos], col = rd16(b + pos + 1);
    if (col == 0xFFFF)
        return pos + 7 <= c->len ? pos + 7 : (c->why = "truncated tree", -1);
    if (col >= (uint32_t)c->nf)
        return c->why = "split on a column beyond n_features", -1;
    if (depth > 2000)
        return c->why = "tree deeper than 2000 levels", -1;
    if (depth > *max_depth)
        *max_depth = depth;
    if (pos + 4 > c->len)
        return c->why = "truncated tree", -1;
    uint32_t nadir = b[pos + 3], equal = nt & 0x0C;
    pos += 4;
    if (nadir > 5)
        return c->why = "bad NA split direction", -1;
    if (nadir != NA_VS_REST) {
        if (equal == 4)
            return c->why = "legacy '==' float split", -2;
        if (equal == 0 || equal == 8) {
            pos += 4;
        } else {
            uint32_t nbytes;
            if (c->flags & NBITS_I32) {
                if (pos + 6 > c->len)
                    return c->why = "truncated tree", -1;
                int32_t nbits = (int32_t)rd32(b + pos + 2);
                if (nbits <= 0)
                    return c->why = "bad bitset size", -1;
                nbytes = (((uint32_t)nbits - 1) >> 3) + 1;
                pos += 6;
            } else {
                if (pos + 4 > c->len)
                    return c->why = "truncated tree", -1;
                nbytes = rd16(b + pos + 2);
                pos += 4;
            }
            if (pos + (Py_ssize_t)nbytes > c->len)
                return c->why = "bitset runs past the end of the tree", -1;
            pos += nbytes;
        }
    }
    uint32_t lmask = nt & 0x33, rmask = (nt & 0xC0) >> 2;
    if (!(lmask == 48 || lmask <= 3) || !(rmask == 48 || rmask == 0))
        return c->why = "bad node type", -1;
    if (lmask == 48) {
        pos += 4;
    } else {
        Py_ssize_t w = lmask + 1;
        if (pos + w > c->len)
            return c->why = "truncated tree", -1;
        const uint8_t *q = b + pos;
        uint32_t size = w == 1 ? q[0] : w == 2 ? rd16(q) : w == 3 ? rd16(q) | ((uint32_t)q[2] << 16) : rd32(q);
        pos += w;
        Py_ssize_t end = check_node(c, pos, depth + 1, max_depth);
        if (end < 0)
            return end;
        if (end != pos + (Py_ssize_t)size)
            return c->why = "left subtree size does not match its content", -1;
        pos = end;
    }
    if (rmask == 48)
        return pos + 4 <= c->len ? pos + 4 : (c->why = "truncated tree", -1);
    return check_node(c, pos, depth + 1, max_depth);
}

/* tree_check(tree, nf, flags) -> depth of the deepest split; ValueError (NotImplementedError for
 * encodings genmodel no longer writes) naming what is wrong. */
static PyObject *tree_check(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer t;
    TreeCheck c = {0};
    if (!PyArg_ParseTuple(args, "y*ni", &t, &c.nf, &c.flags))
        return NULL;
    c.buf = t.buf;
    c.len = t.len;
    int depth = 0;
    Py_ssize_t end = t.len < 7 ? (c.why = "tree shorter than a leaf", -1) : check_node(&c, 0, 1, &depth);
    PyBuffer_Release(&t);
    if (end < 0) {
        PyErr_SetString(end == -2 ? PyExc_NotImplementedError : PyExc_ValueError, c.why);
        return NULL;
    }
    return PyLong_FromLong(depth);
}

#define BYTE_LANES 4 /* trees walked at once for one row: independent walks overlap in the CPU */

/* The leaf values of trees off[0..G) (-1: no tree) for one row, added in tree order from 0.0. */
static double walk_trees(const uint8_t *tb, const int64_t *off, Py_ssize_t G, const double *x,
                         const double *ub, int flags) {
    double acc = 0.0;
    for (Py_ssize_t g0 = 0; g0 < G; g0 += BYTE_LANES) {
        const int m = (int)(G - g0 < BYTE_LANES ? G - g0 : BYTE_LANES);
        Walk w[BYTE_LANES];
        int moving = 0;
        for (int j = 0; j < m; j++) {
            w[j].p = tb + (off[g0 + j] < 0 ? 0 : off[g0 + j]), w[j].stale = 0, w[j].leaf = 0.0;
            if (off[g0 + j] >= 0)
                moving |= 1 << j;
        }
        while (moving)
            for (int j = 0; j < m; j++)
                if ((moving >> j & 1) && tree_step(&w[j], x, ub, flags))
                    moving &= ~(1 << j);
        for (int j = 0; j < m; j++)
            if (off[g0 + j] >= 0)
                acc += w[j].leaf;
    }
    return acc;
}

static inline double walk_tree(const uint8_t *tree, const double *x, const double *ub, int flags) {
    Walk w = {tree, 0, 0, 0, 0.0};
    while (!tree_step(&w, x, ub, flags))
        ;
    return w.leaf;
}

/* tree_walk(X, n, nf, trees, offsets, cat_ub, flags, n_tpc, n_groups, out): per row and class, the
 * leaf values of trees offsets[k * n_groups + g] (g in order; -1: no tree) summed from 0.0. */
static PyObject *tree_walk(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer X, trees, offsets, cat_ub, out;
    Py_ssize_t n, nf, K, G;
    int flags;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*innw*", &X, &n, &nf, &trees, &offsets, &cat_ub, &flags,
                          &K, &G, &out))
        return NULL;
    int ok = n >= 0 && nf >= 0 && K >= 0 && G >= 0 &&
             X.len >= (Py_ssize_t)(n * nf * sizeof(double)) &&
             out.len >= (Py_ssize_t)(n * K * sizeof(double)) &&
             offsets.len >= (Py_ssize_t)(K * G * sizeof(int64_t)) &&
             cat_ub.len >= (Py_ssize_t)(nf * sizeof(double));
    const int64_t *off = offsets.buf;
    for (Py_ssize_t i = 0; ok && i < K * G; i++)
        ok = off[i] < trees.len;
    if (ok) {
        const double *x = X.buf, *ub = cat_ub.buf;
        const uint8_t *tb = trees.buf;
        double *o = out.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n * K; i++)
            o[i] = 0.0;
        for (Py_ssize_t r = 0; r < n; r++)
            for (Py_ssize_t k = 0; k < K; k++)
                o[r * K + k] = walk_trees(tb, off + k * G, G, x + r * nf, ub, flags);
        Py_END_ALLOW_THREADS
    }
    Py_buffer *all[] = {&X, &trees, &offsets, &cat_ub, &out};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        PyBuffer_Release(all[i]);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "tree_walk: array sizes do not match");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* tree_row(row, nf, trees, offsets, cat_ub, flags, n_tpc, n_groups) -> list of n_tpc sums: tree_walk
 * for one row given as a Python sequence of floats (the one-record path: no buffers to build). */
static PyObject *tree_row(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *row;
    Py_buffer trees, offsets, cat_ub;
    Py_ssize_t nf, K, G;
    int flags;
    if (!PyArg_ParseTuple(args, "Ony*y*y*inn", &row, &nf, &trees, &offsets, &cat_ub, &flags, &K, &G))
        return NULL;
    PyObject *seq = PySequence_Fast(row, "tree_row: row is not a sequence"), *res = NULL;
    double stack[64], *x = nf <= 64 ? stack : malloc(sizeof(double) * (nf + 1));
    int ok = seq && x && nf >= 0 && K >= 0 && G >= 0 && PySequence_Fast_GET_SIZE(seq) >= nf &&
             offsets.len >= (Py_ssize_t)(K * G * sizeof(int64_t)) &&
             cat_ub.len >= (Py_ssize_t)(nf * sizeof(double));
    const int64_t *off = offsets.buf;
    for (Py_ssize_t i = 0; ok && i < K * G; i++)
        ok = off[i] < trees.len;
    for (Py_ssize_t c = 0; ok && c < nf; c++) {
        x[c] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, c));
        ok = !(x[c] == -1.0 && PyErr_Occurred());
    }
    if (ok && (res = PyList_New(K))) {
        for (Py_ssize_t k = 0; k < K; k++) {
            PyObject *f = PyFloat_FromDouble(walk_trees(trees.buf, off + k * G, G, x, cat_ub.buf, flags));
            if (!f) {
                Py_CLEAR(res);
                break;
            }
            PyList_SET_ITEM(res, k, f);
        }
    }
    if (x != stack)
        free(x);
    Py_XDECREF(seq);
    PyBuffer_Release(&trees);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&cat_ub);
    if (!ok && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "tree_row: array sizes do not match");
    return ok ? res : NULL;
}

/* ---- trees, as compact node records (decoded once from the bytes) ---------------------------- */

/* tree_flatten decodes every tree into 16-byte node records, so a step is a compare and a load of
 * the child it picks, with no branch: decoding the MOJO's variable-length nodes costs branches the
 * CPU cannot predict from row to row. The top bit of info says what a node is, the rest is an index:
 *   compare: child[v[index] >= val], v being three views of the row (NaN as -inf, NaN as +inf,
 *            is-missing): the view is picked per node by its NA direction. A leaf is a compare
 *            whose two children are itself, val its value: walkers step until none moves;
 *   TABLE:   child[the level table's byte for the integer level of column index], the table at
 *            tables + (the bits of val): u32 length, na_right, oor_right, one byte per level.
 * MOJO split and leaf values are float32; genmodel compares and adds them as doubles, as here. */
typedef struct {
    float val;
    uint32_t info;
    int32_t child[2];
} CNode;

enum { C_COMPARE = 0, C_TABLE = 1 };
enum { NA_SLOT = -1, OUTSIDE_SLOT = -2 };
#define C_KIND(info) ((info) >> 31)
#define C_INDEX(info) ((info) & 0x7FFFFFFFu)
#define TABLE_HEAD 6

typedef struct {
    CNode *nodes;
    Py_ssize_t n, cap;
    uint8_t *tables;
    Py_ssize_t tn, tcap;
    Py_ssize_t nf;
    int flags;
    uint8_t *code_col; /* per column: read by a table node */
} Flat;

static int32_t flat_new(Flat *f, uint32_t kind, uint32_t index, float val) {
    if (f->n == f->cap) {
        Py_ssize_t cap = f->cap ? 2 * f->cap : 1024;
        CNode *nn = cap > INT32_MAX ? NULL : realloc(f->nodes, sizeof(CNode) * cap);
        if (!nn)
            return -1;
        f->nodes = nn, f->cap = cap;
    }
    int32_t i = (int32_t)f->n++;
    f->nodes[i].val = val, f->nodes[i].info = kind << 31 | index;
    f->nodes[i].child[0] = f->nodes[i].child[1] = i;
    return i;
}

static inline float rdfloat(const uint8_t *p) {
    uint32_t u = rd32(p);
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/* Appends a level table's head (length, na_right, oor_right) and room for its levels; returns its
 * offset, or -1. */
static Py_ssize_t flat_table(Flat *f, int na_right, int oor_right, Py_ssize_t len) {
    if (len > (1 << 26) || f->tn + len + TABLE_HEAD > (Py_ssize_t)UINT32_MAX)
        return -1;
    if (f->tn + len + TABLE_HEAD > f->tcap) {
        Py_ssize_t cap = f->tcap ? f->tcap : 4096;
        while (cap < f->tn + len + TABLE_HEAD)
            cap *= 2;
        uint8_t *nt = realloc(f->tables, cap);
        if (!nt)
            return -1;
        f->tables = nt, f->tcap = cap;
    }
    Py_ssize_t off = f->tn;
    uint32_t n32 = (uint32_t)len;
    memcpy(f->tables + off, &n32, 4);
    f->tables[off + 4] = (uint8_t)na_right, f->tables[off + 5] = (uint8_t)oor_right;
    f->tn += len + TABLE_HEAD;
    return off;
}

/* The node at b + *pos (depth steps below its root) and its subtrees, in preorder; returns its
 * record, or -1 (out of memory). *deepest: the most steps from the root to a leaf so far. */
static int32_t flat_node(Flat *f, const uint8_t *b, Py_ssize_t *pos, int stale, uint32_t s_off,
                         uint32_t s_bits, int32_t depth, int32_t *deepest) {
    const uint8_t *p = b + *pos;
    const uint32_t nt = p[0], col = rd16(p + 1);
    if (col == 0xFFFF) {
        *pos += 7;
        *deepest = depth > *deepest ? depth : *deepest;
        return flat_new(f, C_COMPARE, 0, rdfloat(p + 3));
    }
    const uint32_t nadir = p[3];
    p += 4;
    const int na_right = !(nadir == 2 || nadir == 4), equal = nt & 0x0C, v10 = f->flags & V1_0;
    const uint32_t nf = (uint32_t)f->nf;
    float split = 0.0f;
    const uint8_t *bits = NULL;
    uint32_t off = 0, nbits = 0;
    if (nadir != NA_VS_REST) {
        if (equal == 0) {
            split = rdfloat(p);
            p += 4;
        } else {
            uint32_t nbytes;
            bits = p = bitset_at(p, equal, f->flags, &off, &nbits, &nbytes);
            p += nbytes;
            stale = 1, s_off = off, s_bits = nbits;
        }
    }
    int32_t me;
    if (nadir != NA_VS_REST && equal == 0) {
        me = flat_new(f, C_COMPARE, (na_right ? nf : 0) + col, split);
    } else if (nadir == NA_VS_REST && (equal == 0 || !stale || v10)) {
        me = flat_new(f, C_COMPARE, 2 * nf + col, 0.5f);
    } else {
        Py_ssize_t len = bits ? (Py_ssize_t)off + nbits : (Py_ssize_t)s_off + s_bits;
        Py_ssize_t t = flat_table(f, na_right, v10 ? 0 : na_right, len);
        if (t < 0)
            return -1;
        uint8_t *lv = f->tables + t + TABLE_HEAD;
        if (bits) {
            memset(lv, na_right && !v10, off);
            for (uint32_t k = 0; k < nbits; k++)
                lv[off + k] = (bits[k >> 3] >> (k & 7)) & 1;
        } else { /* NAvsREST after a bitset: outside the stale bitset's range is NA */
            memset(lv, na_right, s_off);
            memset(lv + s_off, 0, s_bits);
        }
        uint32_t t32 = (uint32_t)t;
        float tv;
        memcpy(&tv, &t32, 4);
        me = flat_new(f, C_TABLE, col, tv);
        f->code_col[col] = 1;
    }
    if (me < 0)
        return -1;
    const uint32_t lmask = nt & 0x33;
    *pos = p - b;
    int32_t left;
    if (lmask == 48 || (nt & 0xC0) == 0xC0)
        *deepest = depth + 1 > *deepest ? depth + 1 : *deepest;
    if (lmask == 48) {
        left = flat_new(f, C_COMPARE, 0, rdfloat(p));
        *pos += 4;
    } else {
        *pos += lmask + 1;
        left = flat_node(f, b, pos, stale, s_off, s_bits, depth + 1, deepest);
    }
    if (left < 0)
        return -1;
    int32_t right;
    if ((nt & 0xC0) == 0xC0) {
        right = flat_new(f, C_COMPARE, 0, rdfloat(b + *pos));
        *pos += 4;
    } else {
        right = flat_node(f, b, pos, stale, s_off, s_bits, depth + 1, deepest);
    }
    if (right < 0)
        return -1;
    f->nodes[me].child[0] = left, f->nodes[me].child[1] = right;
    return me;
}

/* tree_flatten(trees, offsets, nf, flags) -> (nodes, tables, roots, code_cols) as bytes: the node
 * records, the level tables, one root per tree (a missing tree, offset -1, points at a zero leaf)
 * followed by each tree's depth (the most steps from its root to a leaf), and the columns table
 * nodes read. The trees were checked by tree_check, so only memory can fail
 * here (MemoryError). */
static PyObject *tree_flatten(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer trees, offsets;
    Flat f = {0};
    if (!PyArg_ParseTuple(args, "y*y*ni", &trees, &offsets, &f.nf, &f.flags))
        return NULL;
    Py_ssize_t T = offsets.len / (Py_ssize_t)sizeof(int64_t);
    const int64_t *off = offsets.buf;
    int32_t *roots = malloc(sizeof(int32_t) * (2 * T + 1)), *depths = roots ? roots + T : NULL;
    f.code_col = calloc(f.nf + 1, 1);
    int ok = roots && f.code_col && f.nf >= 0 && 3 * f.nf < (1 << 30);
    for (Py_ssize_t i = 0; ok && i < T; i++) {
        roots[i] = -1, depths[i] = 0;
        if (off[i] >= 0 && off[i] < trees.len) {
            Py_ssize_t pos = (Py_ssize_t)off[i];
            roots[i] = flat_node(&f, trees.buf, &pos, 0, 0, 0, 0, &depths[i]);
            ok = roots[i] >= 0;
        }
    }
    int32_t zero = ok ? flat_new(&f, C_COMPARE, 0, 0.0f) : -1;
    ok = ok && zero >= 0 && flat_table(&f, 0, 0, 0) >= 0; /* tables never empty */
    PyObject *res = NULL;
    if (ok) {
        for (Py_ssize_t i = 0; i < T; i++)
            if (roots[i] < 0)
                roots[i] = zero;
        Py_ssize_t nc = 0;
        int32_t *cols = malloc(sizeof(int32_t) * (f.nf + 1));
        if (cols) {
            for (Py_ssize_t c = 0; c < f.nf; c++)
                if (f.code_col[c])
                    cols[nc++] = (int32_t)c;
            res = Py_BuildValue("(y#y#y#y#)", (const char *)f.nodes, f.n * (Py_ssize_t)sizeof(CNode),
                                (const char *)f.tables, f.tn, (const char *)roots,
                                2 * T * (Py_ssize_t)sizeof(int32_t), (const char *)cols,
                                nc * (Py_ssize_t)sizeof(int32_t));
            free(cols);
        }
    }
    free(f.nodes);
    free(f.tables);
    free(f.code_col);
    free(roots);
    PyBuffer_Release(&trees);
    PyBuffer_Release(&offsets);
    if (!res && !PyErr_Occurred())
        PyErr_NoMemory();
    return res;
}

/* A flattened forest, as tree_sums and the one-row paths read it. */
typedef struct {
    const CNode *nodes;
    const uint8_t *tables;
    const int32_t *roots;     /* n_tpc * n_groups */
    const int32_t *depths;    /* per tree: the most steps from its root to a leaf */
    const int32_t *code_cols; /* the columns table nodes read */
    const double *cat_ub;
    Py_ssize_t nf, n_code_cols, n_tpc, n_groups;
} CForest;

/* The three views of one row (NaN as -inf, NaN as +inf, is-missing) and the integer level of each
 * column that a table node reads. Missing: NaN, or a level beyond the training domain (mojo >=
 * 1.20; cat_ub is NaN where that does not apply). */
static void row_views(const CForest *f, const double *x, double *v, int64_t *code) {
    const Py_ssize_t nf = f->nf;
    for (Py_ssize_t c = 0; c < nf; c++) {
        int miss = isnan(x[c]) || x[c] >= f->cat_ub[c];
        v[c] = miss ? -INFINITY : x[c];
        v[nf + c] = miss ? INFINITY : x[c];
        v[2 * nf + c] = miss;
    }
    for (Py_ssize_t i = 0; i < f->n_code_cols; i++) {
        Py_ssize_t c = f->code_cols[i];
        if (v[2 * nf + c] != 0.0) {
            code[c] = NA_SLOT;
        } else {
            double t = level_of(x[c]);
            code[c] = t < 0 ? OUTSIDE_SLOT : (int64_t)t;
        }
    }
}

/* The node after node i for a row with views v and levels code (a leaf: i itself). */
static inline int32_t flat_next(const CNode *nodes, int32_t i, const uint8_t *tables,
                                const double *v, const int64_t *code) {
    const CNode *p = nodes + i;
    const uint32_t ix = C_INDEX(p->info);
    if (C_KIND(p->info) == C_COMPARE)
        return p->child[v[ix] >= (double)p->val];
    uint32_t at, len;
    memcpy(&at, &p->val, 4);
    const uint8_t *t = tables + at;
    memcpy(&len, t, 4);
    const int64_t c = code[ix];
    const int64_t slot = c == NA_SLOT ? 0 : (c < 0 || c >= (int64_t)len) ? 1 : c + 2;
    return p->child[t[4 + slot] != 0];
}

#define FIXED_STEPS 16 /* trees up to this deep are stepped their depth's times; deeper (and mostly
                          unbalanced: DRF) ones until no walker moves */

/* Walkers at[0..m) stepped together, steps times (the deepest tree's depth: every walker then
 * rests on its leaf), or until none moves when steps < 0; walker j reads the views at v + j * vs
 * and the levels at code + j * cs (strides 0: the walkers are one row's trees). */
static inline void walk_together(const CNode *nodes, const uint8_t *tables, int32_t *at, int m,
                                 const double *v, Py_ssize_t vs, const int64_t *code,
                                 Py_ssize_t cs, int32_t steps) {
    for (int32_t s = 0; s < steps; s++)
        for (int j = 0; j < m; j++)
            at[j] = flat_next(nodes, at[j], tables, v + j * vs, code + j * cs);
    for (; steps < 0;) {
        int moved = 0;
        for (int j = 0; j < m; j++) {
            const int32_t nx = flat_next(nodes, at[j], tables, v + j * vs, code + j * cs);
            moved |= nx != at[j];
            at[j] = nx;
        }
        if (!moved)
            return;
    }
}

#define TREE_LANES 8 /* trees walked at once for one row: independent walks overlap in the CPU */

/* One row's leaf values of trees roots[0..G) (depths[0..G) deep), added in tree order from 0.0. */
static double flat_row_sum(const CForest *f, const int32_t *roots, const int32_t *depths,
                           const double *v, const int64_t *code) {
    const CNode *nodes = f->nodes;
    const Py_ssize_t G = f->n_groups;
    double acc = 0.0;
    for (Py_ssize_t g0 = 0; g0 < G; g0 += TREE_LANES) {
        const int m = (int)(G - g0 < TREE_LANES ? G - g0 : TREE_LANES);
        int32_t at[TREE_LANES], steps = 0;
        for (int j = 0; j < m; j++) {
            at[j] = roots[g0 + j];
            steps = depths[g0 + j] > steps ? depths[g0 + j] : steps;
        }
        walk_together(nodes, f->tables, at, m, v, 0, code, 0, steps > FIXED_STEPS ? -1 : steps);
        for (int j = 0; j < m; j++)
            acc += (double)nodes[at[j]].val;
    }
    return acc;
}

#define ROW_LANES 4 /* rows walked at once through one tree in a batch */
#define BLOCK 64    /* rows that go through every tree before the next rows start: the trees they
                       share stay in cache */

/* Per row and class, the leaf values summed in tree order. Rows go in blocks through one tree
 * after another, ROW_LANES rows in step; a block of fewer rows walks each row's trees in step. */
static void flat_rows(const CForest *f, const double *X, Py_ssize_t n, double *out, double *v,
                      int64_t *code) {
    const Py_ssize_t nf = f->nf, G = f->n_groups, K = f->n_tpc, V = 3 * nf;
    const CNode *nodes = f->nodes;
    double acc[BLOCK];
    for (Py_ssize_t r0 = 0; r0 < n; r0 += BLOCK) {
        const int m = (int)(n - r0 < BLOCK ? n - r0 : BLOCK);
        for (int j = 0; j < m; j++)
            row_views(f, X + (r0 + j) * nf, v + j * V, code + j * nf);
        for (Py_ssize_t k = 0; k < K; k++) {
            const int32_t *roots = f->roots + k * G;
            if (m < ROW_LANES) {
                for (int j = 0; j < m; j++)
                    out[(r0 + j) * K + k] =
                        flat_row_sum(f, roots, f->depths + k * G, v + j * V, code + j * nf);
                continue;
            }
            for (int j = 0; j < m; j++)
                acc[j] = 0.0;
            for (Py_ssize_t g = 0; g < G; g++) {
                for (int j0 = 0; j0 < m; j0 += ROW_LANES) {
                    const int w = m - j0 < ROW_LANES ? m - j0 : ROW_LANES;
                    int32_t at[ROW_LANES];
                    for (int j = 0; j < w; j++)
                        at[j] = roots[g];
                    const int32_t steps = f->depths[k * G + g];
                    walk_together(nodes, f->tables, at, w, v + j0 * V, V, code + j0 * nf, nf,
                                  steps > FIXED_STEPS ? -1 : steps);
                    for (int j = 0; j < w; j++)
                        acc[j0 + j] += (double)nodes[at[j]].val;
                }
            }
            for (int j = 0; j < m; j++)
                out[(r0 + j) * K + k] = acc[j];
        }
    }
}

/* Reads (nodes, tables, roots, code_cols, cat_ub) buffers into f; 0 when their sizes do not fit. */
static int flat_forest(CForest *f, Py_buffer *nodes, Py_buffer *tables, Py_buffer *roots,
                       Py_buffer *code_cols, Py_buffer *cat_ub) {
    const Py_ssize_t n_nodes = nodes->len / (Py_ssize_t)sizeof(CNode);
    f->nodes = nodes->buf, f->tables = tables->buf, f->roots = roots->buf;
    f->code_cols = code_cols->buf, f->cat_ub = cat_ub->buf;
    f->n_code_cols = code_cols->len / (Py_ssize_t)sizeof(int32_t);
    f->depths = f->roots + f->n_tpc * f->n_groups;
    int ok = f->nf >= 0 && f->n_tpc >= 0 && f->n_groups >= 0 && nodes->len % sizeof(CNode) == 0 &&
             roots->len >= (Py_ssize_t)(2 * f->n_tpc * f->n_groups * sizeof(int32_t)) &&
             cat_ub->len >= (Py_ssize_t)(f->nf * sizeof(double));
    for (Py_ssize_t i = 0; ok && i < f->n_tpc * f->n_groups; i++)
        ok = f->roots[i] >= 0 && f->roots[i] < n_nodes && f->depths[i] >= 0 && f->depths[i] <= 2000;
    for (Py_ssize_t i = 0; ok && i < f->n_code_cols; i++)
        ok = f->code_cols[i] >= 0 && f->code_cols[i] < f->nf;
    return ok;
}

/* tree_sums(X, n, nf, nodes, tables, cat_ub, code_cols, roots, n_tpc, n_groups, out): per row and
 * class, the leaf values of the flattened trees summed in tree order from 0.0. */
static PyObject *tree_sums(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer X, nodes, tables, cat_ub, code_cols, roots, out;
    CForest f;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*y*y*nnw*", &X, &n, &f.nf, &nodes, &tables, &cat_ub,
                          &code_cols, &roots, &f.n_tpc, &f.n_groups, &out))
        return NULL;
    int ok = flat_forest(&f, &nodes, &tables, &roots, &code_cols, &cat_ub) && n >= 0 &&
             X.len >= (Py_ssize_t)(n * f.nf * sizeof(double)) &&
             out.len >= (Py_ssize_t)(n * f.n_tpc * sizeof(double));
    double *v = ok ? malloc(sizeof(double) * (BLOCK * 3 * f.nf + 1)) : NULL;
    int64_t *code = ok ? malloc(sizeof(int64_t) * (BLOCK * f.nf + 1)) : NULL;
    if (ok && v && code) {
        Py_BEGIN_ALLOW_THREADS flat_rows(&f, X.buf, n, out.buf, v, code);
        Py_END_ALLOW_THREADS
    }
    free(v);
    free(code);
    Py_buffer *all[] = {&X, &nodes, &tables, &cat_ub, &code_cols, &roots, &out};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        PyBuffer_Release(all[i]);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "tree_sums: array sizes do not match");
        return NULL;
    }
    if (!v || !code)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* tree_flat_row(row, nf, nodes, tables, cat_ub, code_cols, roots, n_tpc, n_groups) -> list of n_tpc
 * sums: tree_sums for one row given as a Python sequence of floats. */
static PyObject *tree_flat_row(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *row, *res = NULL;
    Py_buffer nodes, tables, cat_ub, code_cols, roots;
    CForest f;
    if (!PyArg_ParseTuple(args, "Ony*y*y*y*y*nn", &row, &f.nf, &nodes, &tables, &cat_ub, &code_cols,
                          &roots, &f.n_tpc, &f.n_groups))
        return NULL;
    PyObject *seq = PySequence_Fast(row, "tree_flat_row: row is not a sequence");
    int ok = seq && flat_forest(&f, &nodes, &tables, &roots, &code_cols, &cat_ub) &&
             PySequence_Fast_GET_SIZE(seq) >= f.nf;
    double stack[4 * 64], *x = ok && f.nf > 64 ? malloc(sizeof(double) * 4 * f.nf) : stack;
    int64_t cstack[64], *code = ok && f.nf > 64 ? malloc(sizeof(int64_t) * f.nf) : cstack;
    ok = ok && x && code;
    for (Py_ssize_t c = 0; ok && c < f.nf; c++) {
        x[c] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, c));
        ok = !(x[c] == -1.0 && PyErr_Occurred());
    }
    if (ok && (res = PyList_New(f.n_tpc))) {
        row_views(&f, x, x + f.nf, code);
        for (Py_ssize_t k = 0; k < f.n_tpc; k++) {
            PyObject *s = PyFloat_FromDouble(flat_row_sum(&f, f.roots + k * f.n_groups,
                                                        f.depths + k * f.n_groups, x + f.nf, code));
            if (!s) {
                Py_CLEAR(res);
                break;
            }
            PyList_SET_ITEM(res, k, s);
        }
    }
    if (x != stack)
        free(x);
    if (code != cstack)
        free(code);
    Py_XDECREF(seq);
    Py_buffer *all[] = {&nodes, &tables, &cat_ub, &code_cols, &roots};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        PyBuffer_Release(all[i]);
    if (!ok && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "tree_flat_row: array sizes do not match");
    return ok ? res : NULL;
}

/* ---- XGBoost --------------------------------------------------------------------------------- */

/* A booster node as the legacy binary model stores it (20 bytes): leaves have cleft == -1; the
 * top bit of sindex is "missing goes left", the rest the feature; value is the split condition or
 * the leaf value. Trees are walked in place, in float32 like xgboost-predictor. */
typedef struct {
    int32_t parent, cleft, cright;
    uint32_t sindex;
    float value;
} XNode;

/* xgb_check(nodes, n_nodes) -> (highest split feature or -1, depth): every child in range, every
 * node reached once from the root, every split condition finite. ValueError / NotImplementedError. */
static PyObject *xgb_check(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer b;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "y*n", &b, &n))
        return NULL;
    const char *why = NULL;
    PyObject *exc = PyExc_ValueError;
    long max_col = -1, max_depth = 0;
    int32_t *stack = NULL, *depth = NULL;
    uint8_t *seen = NULL;
    if (n <= 0 || b.len < n * (Py_ssize_t)sizeof(XNode)) {
        why = "xgboost tree is truncated";
    } else {
        stack = malloc(sizeof(int32_t) * n), depth = malloc(sizeof(int32_t) * n), seen = calloc(n, 1);
        if (!stack || !depth || !seen)
            why = "out of memory";
    }
    const XNode *t = b.buf;
    Py_ssize_t top = 0;
    if (!why)
        stack[top] = 0, depth[top++] = 0;
    while (!why && top) {
        top--;
        int32_t i = stack[top], d = depth[top];
        if (seen[i]) {
            why = "xgboost tree is not a tree (cycle or shared node)";
            break;
        }
        seen[i] = 1;
        if (d > max_depth)
            max_depth = d;
        if (t[i].cleft == -1)
            continue;
        if (t[i].cleft < 0 || t[i].cleft >= n || t[i].cright < 0 || t[i].cright >= n) {
            why = "xgboost tree child index out of range";
        } else if (!isfinite(t[i].value)) {
            why = "xgboost split on a non-finite value", exc = PyExc_NotImplementedError;
        } else if (top + 2 > n) {
            why = "xgboost tree is not a tree (cycle or shared node)";
        } else {
            long col = (long)(t[i].sindex & 0x7FFFFFFFu);
            if (col > max_col)
                max_col = col;
            stack[top] = t[i].cleft, depth[top++] = d + 1;
            stack[top] = t[i].cright, depth[top++] = d + 1;
        }
    }
    free(stack), free(depth), free(seen);
    PyBuffer_Release(&b);
    if (why) {
        PyErr_SetString(exc, why);
        return NULL;
    }
    return Py_BuildValue("(ll)", max_col, max_depth);
}

enum { XGB_RAW = 0, XGB_LOGISTIC = 1, XGB_SOFTPROB = 2, XGB_EXP = 3 };

typedef struct {
    const double *raw;
    Py_ssize_t nf, cats, cw;
    const int64_t *cat_off; /* cats + 1 */
    const int32_t *cat_map; /* per one-hot slot, its categorical */
    int use_all, sparse;
    int64_t *hot;
} XRow;

/* GenModel.setCats: the hot slot of each categorical; NaN and levels past the domain: the last. */
static void xgb_hot(XRow *r) {
    for (Py_ssize_t c = 0; c < r->cats; c++) {
        double v = r->raw[c];
        int64_t lo = r->cat_off[c], hi = r->cat_off[c + 1], h;
        if (isnan(v)) {
            h = hi - 1;
        } else {
            int64_t k = (int64_t)trunc(fmin(fmax(v, -2147483648.0), 2147483647.0));
            h = r->use_all ? k + lo : (k != 0 ? k - 1 + lo : -1);
            if (h >= hi)
                h = hi - 1;
        }
        r->hot[c] = h;
    }
}

/* OneHotEncoderFactory.fromArray as float32, every feature of the row, as two views for the walker
 * (xgb_flatten): v[s] with NaN (missing) as -inf, v[W + s] with NaN as +inf, W = cw + numbers. */
static void xgb_views(const XRow *r, double *v) {
    const Py_ssize_t W = r->cw + r->nf - r->cats;
    for (Py_ssize_t s = 0; s < W; s++) {
        float f;
        if (s < r->cw) {
            f = r->hot[r->cat_map[s]] == (int64_t)s ? 1.0f : (r->sparse ? NAN : 0.0f);
        } else {
            f = (float)r->raw[r->cats + (s - r->cw)];
            if (r->sparse && f == 0.0f)
                f = NAN;
        }
        v[s] = isnan(f) ? -INFINITY : (double)f;
        v[W + s] = isnan(f) ? INFINITY : (double)f;
    }
}

/* xgb_flatten(nodes, n_trees_at, width) -> the booster's nodes as tree_flatten's records: a split
 * on feature s whose missing values go left reads v[s] (NaN as -inf), else v[width + s] (NaN as
 * +inf), and goes right when that is >= its condition, which is xgboost's !(f < cond) for every f;
 * a leaf loops onto itself. tree_at (int64) says where each tree starts; trees were checked by
 * xgb_check. ValueError if a child or a feature is out of range. */
static PyObject *xgb_flatten(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer nodes, tree_at;
    Py_ssize_t W;
    if (!PyArg_ParseTuple(args, "y*y*n", &nodes, &tree_at, &W))
        return NULL;
    const Py_ssize_t n = nodes.len / (Py_ssize_t)sizeof(XNode), T = tree_at.len / 8;
    const XNode *t = nodes.buf;
    const int64_t *at = tree_at.buf;
    CNode *out = malloc(sizeof(CNode) * (n + 1));
    int ok = out != NULL && W >= 0 && 2 * W < (1 << 30) && n < INT32_MAX;
    for (Py_ssize_t k = 0; ok && k < T; k++) {
        const Py_ssize_t end = k + 1 < T ? at[k + 1] : n;
        ok = at[k] >= 0 && at[k] < end && end <= n;
        for (Py_ssize_t i = at[k]; ok && i < end; i++) {
            CNode *c = out + i;
            c->val = t[i].value;
            if (t[i].cleft == -1) {
                c->info = 0, c->child[0] = c->child[1] = (int32_t)i;
                continue;
            }
            const uint32_t f = t[i].sindex & 0x7FFFFFFFu;
            const int64_t l = at[k] + (int64_t)t[i].cleft, r = at[k] + (int64_t)t[i].cright;
            ok = (Py_ssize_t)f < W && t[i].cleft >= 0 && t[i].cright >= 0 && l < end && r < end;
            c->info = (t[i].sindex >> 31) ? f : (uint32_t)(W + f);
            c->child[0] = (int32_t)l, c->child[1] = (int32_t)r;
        }
    }
    PyObject *res = ok ? PyBytes_FromStringAndSize((const char *)out, n * (Py_ssize_t)sizeof(CNode)) : NULL;
    free(out);
    PyBuffer_Release(&nodes);
    PyBuffer_Release(&tree_at);
    if (!ok && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "xgb_flatten: a child or a feature is out of range");
    return res;
}

/* Every record reads a view inside 2 * W (the records came from Python: checked before use). */
static int xgb_flat_ok(const CNode *c, Py_ssize_t n, Py_ssize_t W) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (C_KIND(c[i].info) != C_COMPARE || (Py_ssize_t)C_INDEX(c[i].info) >= (W ? 2 * W : 1) ||
            c[i].child[0] < 0 || c[i].child[0] >= n || c[i].child[1] < 0 || c[i].child[1] >= n)
            return 0;
    return 1;
}

/* The objective on one row's margins y[0..G), in place, in float32. */
static void xgb_objective(float *y, Py_ssize_t G, int objective) {
    for (Py_ssize_t g = 0; g < G; g++) {
        if (objective == XGB_LOGISTIC)
            y[g] = 1.0f / (1.0f + (float)exp(-(double)y[g]));
        else if (objective == XGB_EXP)
            y[g] = (float)exp((double)y[g]);
    }
    if (objective == XGB_SOFTPROB) {
        float mx = y[0];
        for (Py_ssize_t g = 1; g < G; g++) /* np.maximum: NaN wins */
            mx = (isnan(y[g]) || isnan(mx)) ? NAN : (y[g] > mx ? y[g] : mx);
        double sum = 0.0;
        for (Py_ssize_t g = 0; g < G; g++) {
            y[g] = (float)exp((double)(y[g] - mx));
            sum += (double)y[g];
        }
        for (Py_ssize_t g = 0; g < G; g++)
            y[g] = y[g] / (float)sum;
    }
}

/* A booster's trees: where each starts in nodes, its output group, its dart weight (or none). */
typedef struct {
    const CNode *nodes; /* xgb_flatten's records */
    const int64_t *tree_at;
    const int32_t *group;
    const float *weights;
    Py_ssize_t T, G;
    int old_order, objective;
} XBooster;

/* One row's outputs y[0..G) in float32: margins summed in tree order from base b (from 0 with b
 * added last for boosters up to 1.2; dart trees scaled by their drop weight), then the objective.
 * v holds the row's views (xgb_views); acc and seen have room for G values. Trees are walked
 * TREE_LANES at a time, their leaves added in tree order. */
static void xgb_row(const XBooster *x, const double *v, float b, float *acc, int32_t *seen, float *y) {
    const Py_ssize_t G = x->G;
    for (Py_ssize_t g = 0; g < G; g++)
        acc[g] = x->old_order ? 0.0f : b, seen[g] = 0;
    for (Py_ssize_t t0 = 0; t0 < x->T; t0 += TREE_LANES) {
        const int m = (int)(x->T - t0 < TREE_LANES ? x->T - t0 : TREE_LANES);
        int32_t at[TREE_LANES];
        for (int j = 0; j < m; j++)
            at[j] = (int32_t)x->tree_at[t0 + j];
        walk_together(x->nodes, NULL, at, m, v, 0, NULL, 0, -1);
        for (int j = 0; j < m; j++) {
            const int32_t g = x->group[t0 + j];
            float leaf = x->nodes[at[j]].val;
            if (x->weights)
                leaf = leaf * x->weights[seen[g]];
            seen[g]++;
            acc[g] += leaf;
        }
    }
    for (Py_ssize_t g = 0; g < G; g++)
        y[g] = x->old_order ? acc[g] + b : acc[g];
    xgb_objective(y, G, x->objective);
}

/* xgb_score(raw, n, nf, cats, cat_offsets, cat_map, use_all, sparse, flat, tree_at, tree_group,
 *           weights, n_groups, base, old_order, objective, out): per row, the booster's output
 * per group in float32 (margins summed in tree order from base, or from 0 with base added last
 * for boosters up to 1.2; dart trees scaled by their drop weight), through the objective. */
static PyObject *xgb_score(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer raw, cat_off, cat_map, nodes, tree_at, tree_group, weights, base, out;
    Py_ssize_t n, G;
    XRow r;
    int old_order, objective;
    if (!PyArg_ParseTuple(args, "y*nnny*y*iiy*y*y*y*ny*iiw*", &raw, &n, &r.nf, &r.cats, &cat_off,
                          &cat_map, &r.use_all, &r.sparse, &nodes, &tree_at, &tree_group, &weights,
                          &G, &base, &old_order, &objective, &out))
        return NULL;
    const Py_ssize_t T = tree_at.len / (Py_ssize_t)sizeof(int64_t);
    r.cw = cat_map.len / (Py_ssize_t)sizeof(int32_t);
    const Py_ssize_t n_nodes = nodes.len / (Py_ssize_t)sizeof(CNode), W = r.cw + r.nf - r.cats;
    const Py_ssize_t nb = base.len / (Py_ssize_t)sizeof(float);
    int ok = n >= 0 && G > 0 && r.cats >= 0 && r.cats <= r.nf &&
             raw.len >= (Py_ssize_t)(n * r.nf * sizeof(double)) &&
             cat_off.len >= (Py_ssize_t)((r.cats + 1) * sizeof(int64_t)) &&
             tree_group.len >= (Py_ssize_t)(T * sizeof(int32_t)) &&
             (weights.len == 0 || weights.len >= (Py_ssize_t)(T * sizeof(float))) &&
             (nb == 1 || nb >= n) && out.len >= (Py_ssize_t)(n * G * sizeof(float));
    const int64_t *at = tree_at.buf;
    const int32_t *grp = tree_group.buf;
    for (Py_ssize_t t = 0; ok && t < T; t++)
        ok = at[t] >= 0 && at[t] < n_nodes && grp[t] >= 0 && grp[t] < G;
    for (Py_ssize_t c = 0; ok && c < r.cw; c++)
        ok = ((const int32_t *)cat_map.buf)[c] >= 0 && ((const int32_t *)cat_map.buf)[c] < r.cats;
    ok = ok && xgb_flat_ok(nodes.buf, n_nodes, W);
    double *v = ok ? malloc(sizeof(double) * (2 * W + 1)) : NULL;
    float *acc = ok ? malloc(sizeof(float) * (G + 1)) : NULL;
    int64_t *hot = ok ? malloc(sizeof(int64_t) * (r.cats + 1)) : NULL;
    int32_t *seen = ok ? malloc(sizeof(int32_t) * (G + 1)) : NULL;
    if (ok && v && acc && hot && seen) {
        const XBooster x = {nodes.buf, at, grp, weights.len ? weights.buf : NULL, T, G, old_order,
                            objective};
        const float *b0 = base.buf;
        r.cat_off = cat_off.buf, r.cat_map = cat_map.buf, r.hot = hot;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            r.raw = (const double *)raw.buf + i * r.nf;
            xgb_hot(&r);
            xgb_views(&r, v);
            xgb_row(&x, v, b0[nb == 1 ? 0 : i], acc, seen, (float *)out.buf + i * G);
        }
        Py_END_ALLOW_THREADS
    }
    free(v), free(acc), free(hot), free(seen);
    Py_buffer *all[] = {&raw, &cat_off, &cat_map, &nodes, &tree_at, &tree_group, &weights, &base, &out};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        PyBuffer_Release(all[i]);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "xgb_score: array sizes do not match");
        return NULL;
    }
    if (!v || !acc || !hot || !seen)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* ---- DeepLearning ----------------------------------------------------------------------------- */

typedef struct {
    const int64_t *hot;   /* (n, cats): the hot input column per categorical, -1 for none */
    const double *nums;   /* (n, n_nums): numeric inputs, placed after cat_width one-hot columns */
    const double *WT;     /* (cols, out): weights, transposed so one input's weights are contiguous */
    const double *b;      /* (out) */
    double *z;            /* (n, out) */
    Py_ssize_t n, cats, n_nums, cat_width, cols, out;
} Layer;

/* Add input column c (value x) for every output into its lane (c % 8), or keep it for the tail. */
static inline void add_input(const Layer *L, double *lanes, Py_ssize_t full, Py_ssize_t c,
                             double x, Py_ssize_t *tail_c, double *tail_x, int *n_tail) {
    if (c >= full) {
        tail_c[*n_tail] = c;
        tail_x[(*n_tail)++] = x;
        return;
    }
    const double *w = L->WT + c * L->out;
    double *lane = lanes + (c % 8) * L->out;
    for (Py_ssize_t o = 0; o < L->out; o++)
        lane[o] += w[o] * x;
}

static void layer_rows(const Layer *L, double *lanes) {
    const Py_ssize_t out = L->out, full = (L->cols / 8) * 8;
    for (Py_ssize_t r = 0; r < L->n; r++) {
        Py_ssize_t tail_c[8];
        double tail_x[8];
        int n_tail = 0;
        memset(lanes, 0, sizeof(double) * 8 * out);
        /* zero inputs are skipped: adding a signed zero to a partial sum started at +0.0 never
         * changes it, so visiting only the hot one-hot slots gives the same bits */
        for (Py_ssize_t i = 0; i < L->cats; i++) {
            int64_t c = L->hot[r * L->cats + i];
            if (c >= 0)
                add_input(L, lanes, full, (Py_ssize_t)c, 1.0, tail_c, tail_x, &n_tail);
        }
        for (Py_ssize_t j = 0; j < L->n_nums; j++)
            add_input(L, lanes, full, L->cat_width + j, L->nums[r * L->n_nums + j], tail_c, tail_x,
                      &n_tail);
        double *z = L->z + r * out;
        for (Py_ssize_t o = 0; o < out; o++) {
            const double *p = lanes + o;
            double s = 0.0;
            s += ((p[0] + p[out]) + p[2 * out]) + p[3 * out];
            s += ((p[4 * out] + p[5 * out]) + p[6 * out]) + p[7 * out];
            for (int t = 0; t < n_tail; t++)
                s += L->WT[tail_c[t] * out + o] * tail_x[t];
            z[o] = s + L->b[o];
        }
    }
}

/* layer(hot, n, cats, nums, n_nums, cat_width, WT, cols, b, out_n, z) */
static PyObject *layer(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer hot, nums, WT, b, z;
    Layer L;
    if (!PyArg_ParseTuple(args, "y*nny*nny*ny*nw*", &hot, &L.n, &L.cats, &nums, &L.n_nums,
                          &L.cat_width, &WT, &L.cols, &b, &L.out, &z))
        return NULL;
    int ok = L.n >= 0 && L.cats >= 0 && L.n_nums >= 0 && L.out >= 0 && L.cat_width >= 0 &&
             L.cat_width + L.n_nums <= L.cols &&
             hot.len >= (Py_ssize_t)(L.n * L.cats * sizeof(int64_t)) &&
             nums.len >= (Py_ssize_t)(L.n * L.n_nums * sizeof(double)) &&
             WT.len >= (Py_ssize_t)(L.cols * L.out * sizeof(double)) &&
             b.len >= (Py_ssize_t)(L.out * sizeof(double)) &&
             z.len >= (Py_ssize_t)(L.n * L.out * sizeof(double));
    double *lanes = ok ? malloc(sizeof(double) * 8 * (L.out + 1)) : NULL;
    if (ok && lanes) {
        L.hot = hot.buf;
        L.nums = nums.buf;
        L.WT = WT.buf;
        L.b = b.buf;
        L.z = z.buf;
        /* hot columns past the input width would read outside WT: checked here, once */
        for (Py_ssize_t i = 0; i < L.n * L.cats && ok; i++)
            ok = L.hot[i] < L.cat_width;
        if (ok) {
            Py_BEGIN_ALLOW_THREADS layer_rows(&L, lanes);
            Py_END_ALLOW_THREADS
        }
    }
    free(lanes);
    Py_buffer *all[] = {&hot, &nums, &WT, &b, &z};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        PyBuffer_Release(all[i]);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "layer: array sizes do not match");
        return NULL;
    }
    if (!lanes)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* ---- one record --------------------------------------------------------------------------------- */

/* The JSON-typed fast path of RowSchema.encode_row: a float (or int) for a numeric column, a known
 * level (str) for a categorical one, None for missing; columns not given are NaN, names not in
 * index are ignored.
 * Fills row[0..nf) and returns 1; 0 for anything else (another type, an unknown level, a huge int:
 * Python encodes the record by its full rules). */
static int encode_into(PyObject *rec, PyObject *index, PyObject *levels, Py_ssize_t nf, double *row) {
    if (!PyDict_Check(rec) || nf < 0 || PyList_GET_SIZE(levels) < nf)
        return 0;
    for (Py_ssize_t i = 0; i < nf; i++)
        row[i] = NAN;
    PyObject *key, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(rec, &pos, &key, &v)) {
        if (!PyUnicode_CheckExact(key)) /* no user code may run while the dict is walked */
            return 0;
        PyObject *at = PyDict_GetItemWithError(index, key);
        if (!at) {
            if (PyErr_Occurred()) {
                PyErr_Clear();
                return 0;
            }
            continue;
        }
        Py_ssize_t i = PyLong_AsSsize_t(at);
        if (i < 0 || i >= nf) {
            PyErr_Clear();
            return 0;
        }
        PyObject *lv = PyList_GET_ITEM(levels, i);
        if (v == Py_None) { /* missing, as a column not given */
            row[i] = NAN;
        } else if (lv == Py_None) {
            if (PyFloat_CheckExact(v)) {
                row[i] = PyFloat_AS_DOUBLE(v);
            } else if (PyLong_CheckExact(v)) {
                row[i] = PyLong_AsDouble(v);
                if (row[i] == -1.0 && PyErr_Occurred()) {
                    PyErr_Clear();
                    return 0;
                }
            } else {
                return 0;
            }
        } else if (PyUnicode_CheckExact(v) && PyDict_CheckExact(lv)) {
            PyObject *j = PyDict_GetItemWithError(lv, v);
            if (!j) {
                PyErr_Clear();
                return 0;
            }
            row[i] = (double)PyLong_AsLongLong(j);
            if (PyErr_Occurred()) {
                PyErr_Clear();
                return 0;
            }
        } else {
            return 0;
        }
    }
    return 1;
}

static PyObject *float_list(const double *x, Py_ssize_t n) {
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        PyObject *f = PyFloat_FromDouble(x[i]);
        if (!f) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, f);
    }
    return out;
}

/* encode_record(record, index, levels, nf) -> list of nf floats, or None (see encode_into). */
static PyObject *encode_record(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *rec, *index, *levels;
    Py_ssize_t nf;
    if (!PyArg_ParseTuple(args, "OO!O!n", &rec, &PyDict_Type, &index, &PyList_Type, &levels, &nf))
        return NULL;
    if (nf < 0)
        Py_RETURN_NONE;
    double stack[64], *row = nf <= 64 ? stack : malloc(sizeof(double) * nf);
    if (!row)
        return PyErr_NoMemory();
    int ok = encode_into(rec, index, levels, nf, row);
    PyObject *out = ok ? float_list(row, nf) : NULL;
    if (row != stack)
        free(row);
    if (!ok)
        Py_RETURN_NONE;
    return out;
}

/* encode_records(records, index, levels, nf, out) -> list of the rows Python must encode: each
 * record (a list of them) encoded into row r of out (n x nf float64) by encode_into; the rows it
 * leaves (other types, unknown levels, not a dict) are listed, in order, for the full rules. */
static PyObject *encode_records(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *recs, *index, *levels;
    Py_ssize_t nf;
    Py_buffer out;
    if (!PyArg_ParseTuple(args, "O!O!O!nw*", &PyList_Type, &recs, &PyDict_Type, &index, &PyList_Type,
                          &levels, &nf, &out))
        return NULL;
    const Py_ssize_t n = PyList_GET_SIZE(recs);
    PyObject *left = NULL;
    if (nf < 0 || PyList_GET_SIZE(levels) < nf || out.len < (Py_ssize_t)(n * nf * sizeof(double))) {
        PyErr_SetString(PyExc_ValueError, "encode_records: array sizes do not match");
    } else if ((left = PyList_New(0))) {
        double *x = out.buf;
        for (Py_ssize_t r = 0; r < n; r++) {
            if (encode_into(PyList_GET_ITEM(recs, r), index, levels, nf, x + r * nf))
                continue;
            PyObject *i = PyLong_FromSsize_t(r);
            if (!i || PyList_Append(left, i) < 0) {
                Py_XDECREF(i);
                Py_CLEAR(left);
                break;
            }
            Py_DECREF(i);
        }
    }
    PyBuffer_Release(&out);
    return left;
}

/* GLM's linear predictor for the row x (cats level codes, then nums numbers), added in genmodel's
 * order: categorical terms, numeric terms (each beta * x), intercept (b[noff + cats + nums]).
 * Returns -1, or the first categorical column whose value is not a level (eta is then unset). */
static Py_ssize_t glm_eta_of(const double *x, Py_ssize_t cats, const int64_t *off, int use_all,
                             const double *b, Py_ssize_t noff, Py_ssize_t nums, double *eta) {
    double e = 0.0;
    int first = 1;
    for (Py_ssize_t i = 0; i < cats + nums; i++) {
        const double v = x[i];
        double t;
        if (i < cats) {
            const int level = isfinite(v) && v >= 0 && v == trunc(v);
            const double width = (double)(off[i + 1] - off[i]);
            if (use_all) {
                if (!level)
                    return i;
                t = v < width ? b[off[i] + (int64_t)v] : 0.0;
            } else if (v != 0) {
                if (!level)
                    return i;
                t = v - 1 < width ? b[off[i] + (int64_t)v - 1] : 0.0;
            } else {
                t = 0.0;
            }
        } else {
            t = b[noff + i] * v;
        }
        e = first ? t : e + t;
        first = 0;
    }
    const double intercept = b[noff + cats + nums];
    *eta = first ? intercept : e + intercept;
    return -1;
}

/* The coefficient layout is sound: every categorical's slice lies inside beta (P values). */
static int glm_layout_ok(const int64_t *off, Py_ssize_t cats, Py_ssize_t nums, Py_ssize_t noff,
                         Py_ssize_t P) {
    int ok = cats >= 0 && nums >= 0 && noff >= 0 && noff + cats + nums + 1 <= P;
    for (Py_ssize_t i = 0; ok && i < cats; i++)
        ok = off[i] >= 0 && off[i] <= off[i + 1] && off[i + 1] <= noff + cats + nums + 1;
    return ok;
}

/* glm_eta(row, cats, offsets, use_all, beta, beta_at, noff, nums) -> (eta, bad column or -1): the
 * linear predictor of one row; beta_at is where this class's coefficients start in beta. */
static PyObject *glm_eta(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *row;
    Py_buffer offsets, beta;
    Py_ssize_t cats, nums, at, noff;
    int use_all;
    if (!PyArg_ParseTuple(args, "Ony*iy*nnn", &row, &cats, &offsets, &use_all, &beta, &at, &noff, &nums))
        return NULL;
    const Py_ssize_t nb = beta.len / (Py_ssize_t)sizeof(double), P = noff + cats + nums + 1;
    PyObject *seq = PySequence_Fast(row, "glm_eta: row is not a sequence");
    int ok = seq && offsets.len >= (Py_ssize_t)((cats + 1) * sizeof(int64_t)) && at >= 0 &&
             at + P <= nb && PySequence_Fast_GET_SIZE(seq) >= cats + nums &&
             glm_layout_ok(offsets.buf, cats, nums, noff, P);
    double stack[64], *x = ok && cats + nums > 64 ? malloc(sizeof(double) * (cats + nums)) : stack;
    ok = ok && x;
    for (Py_ssize_t i = 0; ok && i < cats + nums; i++) {
        x[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
        ok = !(x[i] == -1.0 && PyErr_Occurred());
    }
    double eta = 0.0;
    Py_ssize_t bad = ok ? glm_eta_of(x, cats, offsets.buf, use_all, (const double *)beta.buf + at,
                                     noff, nums, &eta)
                        : -1;
    if (x != stack)
        free(x);
    Py_XDECREF(seq);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&beta);
    if (!ok) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "glm_eta: array sizes do not match");
        return NULL;
    }
    return Py_BuildValue("(dn)", eta, bad);
}

/* activate(z, kind, ratio): a hidden layer's activation in place, as the plain-Python one-row path
 * and genmodel compute it (kind 0 Rectifier, 1 Tanh, 2 ExpRectifier), then dropout's scaling by
 * (1 - ratio) when ratio > 0. */
static PyObject *activate(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer z;
    int kind;
    double ratio;
    if (!PyArg_ParseTuple(args, "w*id", &z, &kind, &ratio))
        return NULL;
    double *v = z.buf;
    const Py_ssize_t n = z.len / (Py_ssize_t)sizeof(double);
    for (Py_ssize_t i = 0; i < n; i++) {
        double a = v[i];
        if (kind == 0)
            a = 0.5 * (a + fabs(a));
        else if (kind == 1)
            a = 1.0 - 2.0 / (1.0 + exp(2.0 * a));
        else
            a = a >= 0 ? a : exp(isnan(a) ? a : fmin(a, 0.0)) - 1;
        v[i] = ratio > 0 ? a * (1.0 - ratio) : a;
    }
    PyBuffer_Release(&z);
    Py_RETURN_NONE;
}

/* maxout_layer(x, n, cols, WT, width, b, k, ratio, out): NeuralNetwork.formNNInputsMaxOut, then
 * ActivationUtils.MaxoutOut and dropout's scaling (ratio 0: none). Per row, each of the width =
 * units * k outputs is a plain sum over the columns in order (WT holds one column's weights per
 * row) plus its bias; each unit takes the largest of its channels at genmodel's offsets (0, 1).
 * out receives n * units doubles. */
static PyObject *maxout_layer(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer X, WT, b, out;
    Py_ssize_t n, cols, width, k;
    double ratio;
    if (!PyArg_ParseTuple(args, "y*nny*ny*ndw*", &X, &n, &cols, &WT, &width, &b, &k, &ratio, &out))
        return NULL;
    const Py_ssize_t units = k > 0 ? width / k : 0;
    int ok = n >= 0 && cols >= 0 && k >= 1 && k <= 2 && width == units * k &&
             X.len >= (Py_ssize_t)(n * cols * sizeof(double)) &&
             WT.len >= (Py_ssize_t)(cols * width * sizeof(double)) &&
             b.len >= (Py_ssize_t)(width * sizeof(double)) &&
             out.len >= (Py_ssize_t)(n * units * sizeof(double));
    double *z = ok ? malloc(sizeof(double) * (size_t)(width + 1)) : NULL;
    if (ok && z) {
        const double *x = X.buf, *w = WT.buf, *bias = b.buf;
        double *o = out.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < n; r++) {
            for (Py_ssize_t j = 0; j < width; j++)
                z[j] = 0.0;
            for (Py_ssize_t c = 0; c < cols; c++) {
                const double xc = x[r * cols + c];
                const double *wc = w + c * width;
                for (Py_ssize_t j = 0; j < width; j++)
                    z[j] += xc * wc[j];
            }
            for (Py_ssize_t j = 0; j < width; j++)
                z[j] += bias[j];
            for (Py_ssize_t u = 0; u < units; u++) {
                double best = z[u * k];
                for (Py_ssize_t ch = 0; ch < k; ch++) {
                    const double v = z[u * k + ch * (ch + 1) / 2];
                    best = best > v ? best : v;
                }
                o[r * units + u] = ratio > 0 ? best * (1.0 - ratio) : best;
            }
        }
        Py_END_ALLOW_THREADS
    }
    free(z);
    Py_buffer *all[] = {&X, &WT, &b, &out};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        PyBuffer_Release(all[i]);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "maxout_layer: array sizes do not match");
        return NULL;
    }
    if (!z)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* ---- input checks ---------------------------------------------------------------------------- */

/* first_bad_code(X, n, nf, n_levels): the lowest-numbered column whose entries are not all NaN or
 * an integer level in [0, n_levels[c]) (n_levels[c] < 0: a numeric column, anything goes), or -1.
 * Later rows only need to look left of the best column found so far. */
static PyObject *first_bad_code(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer X, levels;
    Py_ssize_t n, nf, bad = -1;
    if (!PyArg_ParseTuple(args, "y*nny*", &X, &n, &nf, &levels))
        return NULL;
    int ok = n >= 0 && nf >= 0 && X.len >= (Py_ssize_t)(n * nf * sizeof(double)) &&
             levels.len >= (Py_ssize_t)(nf * sizeof(int64_t));
    if (ok) {
        const double *x = X.buf;
        const int64_t *lv = levels.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < n && bad != 0; r++)
            for (Py_ssize_t c = 0; c < (bad < 0 ? nf : bad); c++) {
                double v = x[r * nf + c];
                if (lv[c] >= 0 && !isnan(v) && !(v >= 0 && v < (double)lv[c] && v == trunc(v))) {
                    bad = c;
                    break;
                }
            }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&X);
    PyBuffer_Release(&levels);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "first_bad_code: array sizes do not match");
        return NULL;
    }
    return PyLong_FromSsize_t(bad);
}

/* ---- one row through a whole model ---------------------------------------------------------- */

/* A plan scores one row of a model in one C call, with genmodel's operations in its order: the
 * tree, XGBoost, GLM and StackedEnsemble scorers build one (a capsule) from what they loaded, for
 * the outputs they have a one-row path for; Python keeps every other case. Plans read the bytes
 * objects they were built from (held in owned) and scratch space of their own, so one plan runs
 * under the GIL, never released. */
enum { PLAN_TREES, PLAN_XGB, PLAN_GLM, PLAN_SE };
/* what becomes of a forest's sum (n_tpc 1) */
enum { GBM_BINOMIAL, GBM_MULTINOMIAL2, GBM_REGRESSION, DRF_REGRESSION, DRF_BINOMIAL };
enum { LINK_IDENTITY, LINK_LOG, LINK_LOGIT };

typedef struct Plan Plan;
struct Plan {
    int kind, nout, post, link, binomial, use_all, logit;
    Py_ssize_t nf;
    double threshold, init_f;
    PyObject *owned;
    double *v;     /* scratch: tree views (3 nf), GLM's imputed row, the ensemble's base inputs */
    int64_t *code; /* scratch: levels (trees), hot slots (XGBoost) */
    CForest forest;
    XBooster booster;
    XRow xrow;
    float base, *acc;
    int32_t *seen;
    const int64_t *cat_off;
    const double *beta, *modes, *means;
    Py_ssize_t cats, nums, noff, n_modes, n_means;
    Py_ssize_t n_base, width, pick;
    const Plan **bases;
    const int32_t **maps; /* per base model: its columns in the ensemble's row, or NULL (the same) */
    const Py_ssize_t *slot;
    const Plan *meta;
};

static void plan_free(PyObject *capsule) {
    Plan *p = PyCapsule_GetPointer(capsule, "converge.plan");
    if (!p)
        return;
    Py_XDECREF(p->owned);
    free(p->v), free(p->code), free(p->acc), free(p->seen);
    free(p->bases), free(p->maps), free((void *)p->slot);
    free(p);
}

/* A new plan holding owned; NULL with an exception set. */
static Plan *plan_alloc(int kind, PyObject *owned, Py_ssize_t nf, Py_ssize_t nv, Py_ssize_t ncode) {
    Plan *p = calloc(1, sizeof(Plan));
    if (!p || nf < 0) {
        free(p);
        PyErr_NoMemory();
        return NULL;
    }
    p->kind = kind, p->nf = nf;
    p->v = malloc(sizeof(double) * (nv + 1));
    p->code = malloc(sizeof(int64_t) * (ncode + 1));
    Py_INCREF(owned);
    p->owned = owned;
    return p;
}

static PyObject *plan_capsule(Plan *p) {
    if (!p->v || !p->code) {
        PyObject *tmp = PyCapsule_New(p, "converge.plan", plan_free);
        Py_XDECREF(tmp);
        return PyErr_NoMemory();
    }
    return PyCapsule_New(p, "converge.plan", plan_free);
}

static inline double nan_max(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a >= b ? a : b); }
static inline double nan_min(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a <= b ? a : b); }

/* GbmMojoModel.linkInv for identity, log and logit: min(1e19, exp(min(x, 50))) as genmodel. */
static inline double gbm_exp(double x) {
    if (isnan(x))
        return x;
    double e = exp(x < 50.0 ? x : 50.0);
    return e < 1e19 ? e : 1e19;
}

static inline double gbm_link_inv(int link, double f) {
    if (link == LINK_LOG)
        return gbm_exp(f);
    if (link == LINK_LOGIT)
        return 1.0 / (1.0 + gbm_exp(-f));
    return f;
}

static inline int binomial_out(double *out, double p0, double p1, double threshold) {
    out[0] = p1 >= threshold ? 1.0 : 0.0, out[1] = p0, out[2] = p1;
    return 0;
}

/* The model's preds for row x into out (1 or 3 values): 0, or 1 where Python must score the row
 * (a GLM given a value that is not a level: Python raises the error). */
static int plan_eval(const Plan *p, const double *x, double *out) {
    switch (p->kind) {
    case PLAN_TREES: {
        row_views(&p->forest, x, p->v, p->code);
        const double s = flat_row_sum(&p->forest, p->forest.roots, p->forest.depths, p->v,
                                      p->code);
        const double G = (double)p->forest.n_groups;
        switch (p->post) {
        case GBM_BINOMIAL: {
            const double p1 = gbm_link_inv(p->link, (s + p->init_f) + 0.0);
            return binomial_out(out, 1.0 - p1, p1, p->threshold);
        }
        case GBM_MULTINOMIAL2: {
            const double a = s + (p->init_f + 0.0), b = -a;
            const double m = nan_max(nan_max(a, a), b);
            const double ea = exp(a - m), eb = exp(b - m), sum = (0.0 + ea) + eb;
            return binomial_out(out, ea / sum, eb / sum, p->threshold);
        }
        case GBM_REGRESSION:
            out[0] = gbm_link_inv(p->link, (s + p->init_f) + 0.0);
            return 0;
        case DRF_REGRESSION:
            out[0] = s / G;
            return 0;
        default: {
            const double p0 = s / G;
            return binomial_out(out, p0, 1.0 - p0, p->threshold);
        }
        }
    }
    case PLAN_XGB: {
        XRow r = p->xrow;
        r.raw = x, r.hot = p->code;
        xgb_hot(&r);
        xgb_views(&r, p->v);
        float y;
        xgb_row(&p->booster, p->v, p->base, p->acc, p->seen, &y);
        if (p->nout == 1) {
            out[0] = (double)y;
            return 0;
        }
        return binomial_out(out, (double)(float)(1.0 - (double)y), (double)y, p->threshold);
    }
    case PLAN_GLM: {
        const double *row = x;
        if (p->n_modes || p->n_means) {
            double *w = p->v;
            memcpy(w, x, sizeof(double) * (p->cats + p->nums));
            for (Py_ssize_t i = 0; i < p->n_modes && i < p->cats; i++)
                if (isnan(w[i]))
                    w[i] = p->modes[i];
            for (Py_ssize_t i = 0; i < p->n_means && i < p->nums; i++)
                if (isnan(w[p->cats + i]))
                    w[p->cats + i] = p->means[i];
            row = w;
        }
        double eta;
        if (glm_eta_of(row, p->cats, p->cat_off, p->use_all, p->beta, p->noff, p->nums, &eta) >= 0)
            return 1;
        const double mu = p->link == LINK_LOGIT ? 1.0 / (exp(-eta) + 1.0)
                          : p->link == LINK_LOG ? exp(eta)
                                                : eta;
        if (!p->binomial) {
            out[0] = mu;
            return 0;
        }
        return binomial_out(out, 1.0 - mu, mu, p->threshold);
    }
    default: { /* PLAN_SE */
        double *bp = p->v, *row = p->v + p->width;
        for (Py_ssize_t i = 0; i < p->width; i++)
            bp[i] = 0.0;
        for (Py_ssize_t i = 0; i < p->n_base; i++) {
            const Plan *b = p->bases[i];
            const double *xb = x;
            if (p->maps[i]) {
                for (Py_ssize_t c = 0; c < b->nf; c++)
                    row[c] = x[p->maps[i][c]];
                xb = row;
            }
            double o[3];
            if (plan_eval(b, xb, o))
                return 1;
            bp[p->slot[i]] = o[p->pick];
        }
        if (p->logit)
            for (Py_ssize_t i = 0; i < p->width; i++) {
                const double q = nan_min(1 - 1e-9, nan_max(bp[i], 1e-9)), r = q / (1 - q);
                bp[i] = r == 0 ? -19.0 : nan_max(-19.0, r > 0 ? log(r) : NAN);
            }
        return plan_eval(p->meta, bp, out);
    }
    }
}

static int bytes_len(PyObject *b, Py_ssize_t unit) {
    return (int)(PyBytes_GET_SIZE(b) / unit);
}

/* plan_trees(nodes, tables, roots, code_cols, cat_ub, nf, n_groups, post, link, init_f, threshold):
 * a forest of one tree per group (tree_flatten's bytes) and what becomes of its sum. */
static PyObject *plan_trees(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *nodes, *tables, *roots, *code_cols, *cat_ub;
    CForest f;
    int post, link;
    double init_f, threshold;
    if (!PyArg_ParseTuple(args, "SSSSSnniidd", &nodes, &tables, &roots, &code_cols, &cat_ub, &f.nf,
                          &f.n_groups, &post, &link, &init_f, &threshold))
        return NULL;
    f.n_tpc = 1;
    Py_buffer bn, bt, br, bc, bu;
    PyObject *objs[] = {nodes, tables, roots, code_cols, cat_ub};
    Py_buffer *bufs[] = {&bn, &bt, &br, &bc, &bu};
    for (int i = 0; i < 5; i++)
        PyBuffer_FillInfo(bufs[i], objs[i], PyBytes_AS_STRING(objs[i]), PyBytes_GET_SIZE(objs[i]), 1, 0);
    int ok = flat_forest(&f, &bn, &bt, &br, &bc, &bu) && f.n_groups > 0 && post >= 0 &&
             post <= DRF_BINOMIAL && link >= 0 && link <= LINK_LOGIT;
    for (int i = 0; i < 5; i++)
        PyBuffer_Release(bufs[i]);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "plan_trees: array sizes do not match");
        return NULL;
    }
    PyObject *owned = PyTuple_Pack(5, nodes, tables, roots, code_cols, cat_ub);
    if (!owned)
        return NULL;
    Plan *p = plan_alloc(PLAN_TREES, owned, f.nf, 3 * f.nf, f.nf);
    Py_DECREF(owned);
    if (!p)
        return NULL;
    p->forest = f, p->post = post, p->link = link, p->init_f = init_f, p->threshold = threshold;
    p->nout = post == GBM_REGRESSION || post == DRF_REGRESSION ? 1 : 3;
    return plan_capsule(p);
}

/* plan_xgb(flat, tree_at, tree_group, weights, base, cat_offsets, cat_map, nf, cats, use_all,
 *          sparse, old_order, objective, binomial, threshold): a booster of one output group, its
 *          nodes as xgb_flatten gives them. */
static PyObject *plan_xgb(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *nodes, *tree_at, *tree_group, *weights, *cat_off, *cat_map;
    XRow r = {0};
    int old_order, objective, binomial;
    float base;
    double threshold;
    if (!PyArg_ParseTuple(args, "SSSSfSSnniiiiid", &nodes, &tree_at, &tree_group, &weights, &base,
                          &cat_off, &cat_map, &r.nf, &r.cats, &r.use_all, &r.sparse, &old_order,
                          &objective, &binomial, &threshold))
        return NULL;
    const Py_ssize_t T = bytes_len(tree_at, 8), n_nodes = bytes_len(nodes, sizeof(CNode));
    const int64_t *at = (const int64_t *)PyBytes_AS_STRING(tree_at);
    const int32_t *grp = (const int32_t *)PyBytes_AS_STRING(tree_group);
    const int32_t *map = (const int32_t *)PyBytes_AS_STRING(cat_map);
    r.cw = bytes_len(cat_map, 4);
    int ok = r.cats >= 0 && r.cats <= r.nf && bytes_len(cat_off, 8) >= r.cats + 1 &&
             bytes_len(tree_group, 4) >= T &&
             (PyBytes_GET_SIZE(weights) == 0 || bytes_len(weights, 4) >= T);
    for (Py_ssize_t t = 0; ok && t < T; t++)
        ok = at[t] >= 0 && at[t] < n_nodes && grp[t] == 0;
    for (Py_ssize_t c = 0; ok && c < r.cw; c++)
        ok = map[c] >= 0 && map[c] < r.cats;
    const Py_ssize_t W = r.cw + r.nf - r.cats;
    ok = ok && xgb_flat_ok((const CNode *)PyBytes_AS_STRING(nodes), n_nodes, W);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "plan_xgb: array sizes do not match");
        return NULL;
    }
    PyObject *owned = PyTuple_Pack(6, nodes, tree_at, tree_group, weights, cat_off, cat_map);
    if (!owned)
        return NULL;
    Plan *p = plan_alloc(PLAN_XGB, owned, r.nf, 2 * W, r.cats);
    Py_DECREF(owned);
    if (!p)
        return NULL;
    r.cat_off = (const int64_t *)PyBytes_AS_STRING(cat_off), r.cat_map = map;
    p->xrow = r, p->base = base, p->threshold = threshold, p->nout = binomial ? 3 : 1;
    p->booster = (XBooster){(const CNode *)PyBytes_AS_STRING(nodes), at, grp,
                            PyBytes_GET_SIZE(weights) ? (const float *)PyBytes_AS_STRING(weights) : NULL,
                            T, 1, old_order, objective};
    p->acc = malloc(sizeof(float) * 2);
    p->seen = malloc(sizeof(int32_t) * 2);
    if (!p->acc || !p->seen)
        p->v = (free(p->v), NULL); /* plan_capsule reports the failure */
    return plan_capsule(p);
}

/* plan_glm(beta, cat_offsets, modes, means, cats, nums, noff, use_all, binomial, link, threshold):
 * GLM's one-row score for identity, log and logit links (no offset). */
static PyObject *plan_glm(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *beta, *cat_off, *modes, *means;
    Py_ssize_t cats, nums, noff;
    int use_all, binomial, link;
    double threshold;
    if (!PyArg_ParseTuple(args, "SSSSnnniiid", &beta, &cat_off, &modes, &means, &cats, &nums, &noff,
                          &use_all, &binomial, &link, &threshold))
        return NULL;
    const int64_t *off = (const int64_t *)PyBytes_AS_STRING(cat_off);
    if (bytes_len(cat_off, 8) < cats + 1 || link < 0 || link > LINK_LOGIT ||
        !glm_layout_ok(off, cats, nums, noff, bytes_len(beta, 8))) {
        PyErr_SetString(PyExc_ValueError, "plan_glm: array sizes do not match");
        return NULL;
    }
    PyObject *owned = PyTuple_Pack(4, beta, cat_off, modes, means);
    if (!owned)
        return NULL;
    Plan *p = plan_alloc(PLAN_GLM, owned, cats + nums, cats + nums, 0);
    Py_DECREF(owned);
    if (!p)
        return NULL;
    p->beta = (const double *)PyBytes_AS_STRING(beta), p->cat_off = off;
    p->modes = (const double *)PyBytes_AS_STRING(modes), p->n_modes = bytes_len(modes, 8);
    p->means = (const double *)PyBytes_AS_STRING(means), p->n_means = bytes_len(means, 8);
    p->cats = cats, p->nums = nums, p->noff = noff, p->link = link, p->threshold = threshold;
    p->binomial = binomial, p->use_all = use_all;
    p->nout = binomial ? 3 : 1;
    return plan_capsule(p);
}

/* plan_se(bases, meta, nf, width, pick, logit): bases a tuple of (slot, plan, columns as int32
 * bytes or None); each base model's output pick (2: p1 of a binomial, 0: a regression value) goes
 * to the metalearner's input slot, through the logit transform when asked. */
static PyObject *plan_se(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *bases, *meta;
    Py_ssize_t nf, width, pick;
    int logit;
    if (!PyArg_ParseTuple(args, "O!Onnni", &PyTuple_Type, &bases, &meta, &nf, &width, &pick, &logit))
        return NULL;
    const Plan *m = PyCapsule_GetPointer(meta, "converge.plan");
    if (!m)
        return NULL;
    const Py_ssize_t nb = PyTuple_GET_SIZE(bases);
    int ok = m->nf == width && width >= 0 && (pick == 0 || pick == 2) && nf >= 0;
    Py_ssize_t most = 0;
    for (Py_ssize_t i = 0; ok && i < nb; i++) {
        PyObject *t = PyTuple_GET_ITEM(bases, i);
        ok = PyTuple_Check(t) && PyTuple_GET_SIZE(t) == 3;
        if (!ok)
            break;
        Py_ssize_t slot = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 0));
        const Plan *b = PyCapsule_GetPointer(PyTuple_GET_ITEM(t, 1), "converge.plan");
        PyObject *cols = PyTuple_GET_ITEM(t, 2);
        if (!b)
            return NULL;
        ok = slot >= 0 && slot < width && b->nout > pick &&
             (cols == Py_None ? b->nf <= nf : PyBytes_Check(cols) && bytes_len(cols, 4) == b->nf);
        const int32_t *c = ok && cols != Py_None ? (const int32_t *)PyBytes_AS_STRING(cols) : NULL;
        for (Py_ssize_t j = 0; ok && c && j < b->nf; j++)
            ok = c[j] >= 0 && c[j] < nf;
        most = b->nf > most ? b->nf : most;
    }
    if (!ok) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "plan_se: inputs do not match");
        return NULL;
    }
    PyObject *owned = PyTuple_Pack(2, bases, meta);
    if (!owned)
        return NULL;
    Plan *p = plan_alloc(PLAN_SE, owned, nf, width + most, 0);
    Py_DECREF(owned);
    if (!p)
        return NULL;
    p->meta = m, p->n_base = nb, p->width = width, p->pick = pick, p->logit = logit;
    p->nout = m->nout;
    p->bases = malloc(sizeof(Plan *) * (nb + 1));
    p->maps = malloc(sizeof(int32_t *) * (nb + 1));
    Py_ssize_t *slot = malloc(sizeof(Py_ssize_t) * (nb + 1));
    p->slot = slot;
    if (!p->bases || !p->maps || !slot) {
        p->v = (free(p->v), NULL);
        return plan_capsule(p);
    }
    for (Py_ssize_t i = 0; i < nb; i++) {
        PyObject *t = PyTuple_GET_ITEM(bases, i), *cols = PyTuple_GET_ITEM(t, 2);
        slot[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 0));
        p->bases[i] = PyCapsule_GetPointer(PyTuple_GET_ITEM(t, 1), "converge.plan");
        p->maps[i] = cols == Py_None ? NULL : (const int32_t *)PyBytes_AS_STRING(cols);
    }
    return plan_capsule(p);
}

/* plan_row(plan, row) -> the model's preds as a list, or None where Python must score the row. */
static PyObject *plan_row(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cap, *row;
    if (!PyArg_ParseTuple(args, "OO", &cap, &row))
        return NULL;
    const Plan *p = PyCapsule_GetPointer(cap, "converge.plan");
    PyObject *seq = p ? PySequence_Fast(row, "plan_row: row is not a sequence") : NULL;
    if (!seq)
        return NULL;
    double stack[64], *x = p->nf <= 64 ? stack : malloc(sizeof(double) * p->nf), out[3];
    int ok = x && PySequence_Fast_GET_SIZE(seq) == p->nf;
    for (Py_ssize_t c = 0; ok && c < p->nf; c++) {
        x[c] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, c));
        ok = !(x[c] == -1.0 && PyErr_Occurred());
    }
    PyObject *res = NULL;
    if (ok)
        res = plan_eval(p, x, out) ? Py_NewRef(Py_None) : float_list(out, p->nout);
    else if (!PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "plan_row: the row does not match the model");
    if (x != stack)
        free(x);
    Py_DECREF(seq);
    return res;
}

/* plan_record(plan, record, index, levels, classes, names) -> the output dict of one record
 * ({"predict": value}, or {"predict": class, names[0]: p0, names[1]: p1}), or None where Python
 * must encode or score it. index and levels are RowSchema's; classes and names 2-tuples, or
 * classes None for a regression. */
static PyObject *plan_record(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 6 || !PyDict_Check(args[2]) || !PyList_Check(args[3]) ||
        !(args[4] == Py_None || (PyTuple_Check(args[4]) && PyTuple_GET_SIZE(args[4]) == 2 &&
                                 PyTuple_Check(args[5]) && PyTuple_GET_SIZE(args[5]) == 2))) {
        PyErr_SetString(PyExc_TypeError, "plan_record(plan, record, index, levels, classes, names)");
        return NULL;
    }
    const Plan *p = PyCapsule_GetPointer(args[0], "converge.plan");
    if (!p)
        return NULL;
    if ((args[4] == Py_None) != (p->nout == 1)) {
        PyErr_SetString(PyExc_ValueError, "plan_record: classes do not match the model");
        return NULL;
    }
    double stack[64], *x = p->nf <= 64 ? stack : malloc(sizeof(double) * p->nf), out[3];
    if (!x)
        return PyErr_NoMemory();
    int ok = encode_into(args[1], args[2], args[3], p->nf, x) && !plan_eval(p, x, out);
    if (x != stack)
        free(x);
    if (!ok)
        Py_RETURN_NONE;
    PyObject *d = PyDict_New(), *v = NULL;
    if (!d)
        return NULL;
    if (p->nout == 1) {
        v = PyFloat_FromDouble(out[0]);
        if (!v || PyDict_SetItemString(d, "predict", v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(v);
        return d;
    }
    if (PyDict_SetItemString(d, "predict", PyTuple_GET_ITEM(args[4], out[0] != 0.0)) < 0)
        Py_CLEAR(d);
    for (int i = 0; d && i < 2; i++) {
        v = PyFloat_FromDouble(out[1 + i]);
        if (!v || PyDict_SetItem(d, PyTuple_GET_ITEM(args[5], i), v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(v);
    }
    return d;
}

/* ---- TreeSHAP (genmodel's TreeSHAP.java, path-dependent, condition 0) -------------------------
 * Trees as flat node arrays shared by all trees: kind (0 leaf, 1 compare: NaN goes right when
 * na_right else left, a number right when >= thr; 2 missing-or-not: NaN right; 3 level table:
 * tables[off] for NaN, tables[off + 1] outside [0, len), else tables[off + 2 + code]), col,
 * left, right, weight and leaf value as float32. Every operation is float32 in Java's order
 * (-ffp-contract=off: no fused multiply-add), so the values are genmodel's bit for bit. */
typedef struct {
    int f;
    float z, o, w;
} ShapPE;

typedef struct {
    const int32_t *kind, *col, *left, *right, *tbl_off, *tbl_len, *na_right;
    const double *thr;
    const float *weight, *value;
    const uint8_t *tables;
} ShapTrees;

static void shap_extend(ShapPE *p, int d, float z, float o, int f) {
    p[d].f = f;
    p[d].z = z;
    p[d].o = o;
    p[d].w = d == 0 ? 1.0f : 0.0f;
    for (int i = d - 1; i >= 0; i--) {
        p[i + 1].w += o * p[i].w * (float)(i + 1) / (float)(d + 1);
        p[i].w = z * p[i].w * (float)(d - i) / (float)(d + 1);
    }
}

static void shap_unwind(ShapPE *p, int d, int idx) {
    const float o = p[idx].o, z = p[idx].z;
    float next = p[d].w;
    for (int i = d - 1; i >= 0; --i) {
        if (o != 0) {
            const float tmp = p[i].w;
            p[i].w = next * (float)(d + 1) / ((float)(i + 1) * o);
            next = tmp - p[i].w * z * (float)(d - i) / (float)(d + 1);
        } else if (z != 0) {
            p[i].w = (p[i].w * (float)(d + 1)) / (z * (float)(d - i));
        } else {
            p[i].w = 0;
        }
    }
    for (int i = idx; i < d; ++i) {
        p[i].f = p[i + 1].f;
        p[i].z = p[i + 1].z;
        p[i].o = p[i + 1].o;
    }
}

static float shap_unwound_sum(const ShapPE *p, int d, int idx) {
    const float o = p[idx].o, z = p[idx].z;
    float next = p[d].w, total = 0;
    for (int i = d - 1; i >= 0; --i) {
        if (o != 0) {
            const float tmp = next * (float)(d + 1) / ((float)(i + 1) * o);
            total += tmp;
            next = p[i].w - tmp * z * ((float)(d - i) / (float)(d + 1));
        } else if (z != 0) {
            total += (p[i].w / z) / ((float)(d - i) / (float)(d + 1));
        }
    }
    return total;
}

static int shap_goes_right(const ShapTrees *t, Py_ssize_t node, const double *x) {
    const double v = x[t->col[node]];
    switch (t->kind[node]) {
    case 1:
        return isnan(v) ? t->na_right[node] : v >= t->thr[node];
    case 2:
        return isnan(v);
    default: {
        const uint8_t *tb = t->tables + t->tbl_off[node];
        if (isnan(v))
            return tb[0];
        const long code = (long)v;
        return (code < 0 || code >= t->tbl_len[node]) ? tb[1] : tb[2 + code];
    }
    }
}

static void shap_recurse(const ShapTrees *t, const double *x, float *phi, Py_ssize_t node,
                         ShapPE *parent, int d, float z, float o, int f) {
    ShapPE *p = parent + d;
    for (int i = 0; i < d; i++)
        p[i] = parent[i];
    shap_extend(p, d, z, o, f);
    if (t->kind[node] == 0) {
        for (int i = 1; i <= d; ++i) {
            const float w = shap_unwound_sum(p, d, i);
            phi[p[i].f] += w * (p[i].o - p[i].z) * t->value[node] * 1.0f;
        }
        return;
    }
    const int split = t->col[node];
    const int right = shap_goes_right(t, node, x);
    const Py_ssize_t hot = right ? t->right[node] : t->left[node];
    const Py_ssize_t cold = right ? t->left[node] : t->right[node];
    const float w = t->weight[node];
    const float hz = w != 0 ? t->weight[hot] / w : 0.5f, cz = w != 0 ? t->weight[cold] / w : 0.5f;
    float iz = 1, io = 1;
    int at = 0;
    for (; at <= d; ++at)
        if (p[at].f == split)
            break;
    if (at != d + 1) {
        iz = p[at].z;
        io = p[at].o;
        shap_unwind(p, d, at);
        d -= 1;
    }
    shap_recurse(t, x, phi, hot, p, d + 1, hz * iz, io, split);
    shap_recurse(t, x, phi, cold, p, d + 1, cz * iz, 0, split);
}

/* tree_shap(X, n, width, kind, col, left, right, thr, na_right, tbl_off, tbl_len, tables, weight,
 *           value, roots, expected, max_depth, bias, out): out[n][width + 1] float32. */
static PyObject *tree_shap(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer X, kind, col, left, right, thr, na_right, tbl_off, tbl_len, tables, weight, value,
        roots, expected, out;
    Py_ssize_t n, width;
    int max_depth;
    float bias;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*y*y*y*y*y*y*y*y*y*y*ifw*", &X, &n, &width, &kind, &col,
                          &left, &right, &thr, &na_right, &tbl_off, &tbl_len, &tables, &weight,
                          &value, &roots, &expected, &max_depth, &bias, &out))
        return NULL;
    const Py_ssize_t nodes = kind.len / 4, n_trees = roots.len / 4;
    int ok = X.len >= n * width * (Py_ssize_t)sizeof(double) &&
             out.len >= n * (width + 1) * (Py_ssize_t)sizeof(float) && col.len == kind.len &&
             left.len == kind.len && right.len == kind.len && na_right.len == kind.len &&
             tbl_off.len == kind.len && tbl_len.len == kind.len && thr.len == nodes * 8 &&
             weight.len == kind.len && value.len == kind.len && expected.len == roots.len &&
             max_depth >= 0 && max_depth < 4096;
    const int32_t *k = kind.buf, *c = col.buf, *l = left.buf, *r = right.buf, *to = tbl_off.buf,
                  *tl = tbl_len.buf, *rt = roots.buf;
    for (Py_ssize_t i = 0; ok && i < nodes; i++) {  /* every index stays inside its array */
        if (k[i] == 0)
            continue;
        ok = k[i] >= 1 && k[i] <= 3 && c[i] >= 0 && c[i] < width && l[i] >= 0 && l[i] < nodes &&
             r[i] >= 0 && r[i] < nodes &&
             (k[i] != 3 || (to[i] >= 0 && tl[i] >= 0 && to[i] + 2 + (Py_ssize_t)tl[i] <= tables.len));
    }
    for (Py_ssize_t i = 0; ok && i < n_trees; i++)
        ok = rt[i] >= 0 && rt[i] < nodes;
    const Py_ssize_t ws = (Py_ssize_t)(max_depth + 3) * (max_depth + 4);
    ShapPE *path = ok ? malloc(sizeof(ShapPE) * ws) : NULL;
    if (ok && path) {
        ShapTrees t = {k, c, l, r, to, tl, na_right.buf, thr.buf, weight.buf, value.buf, tables.buf};
        const float *ex = expected.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t row = 0; row < n; row++) {
            const double *x = (const double *)X.buf + row * width;
            float *phi = (float *)out.buf + row * (width + 1);
            for (Py_ssize_t j = 0; j < width; j++)
                phi[j] = 0;
            phi[width] = bias;
            for (Py_ssize_t tree = 0; tree < n_trees; tree++) {
                phi[width] += ex[tree];
                shap_recurse(&t, x, phi, rt[tree], path, 0, 1.0f, 1.0f, -1);
            }
        }
        Py_END_ALLOW_THREADS
    }
    free(path);
    Py_buffer *all[] = {&X, &kind, &col, &left, &right, &thr, &na_right, &tbl_off, &tbl_len,
                        &tables, &weight, &value, &roots, &expected, &out};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        PyBuffer_Release(all[i]);
    if (!ok)
        return PyErr_Format(PyExc_ValueError, "tree_shap: inconsistent node arrays"), NULL;
    if (!path)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* ---- GLRM ------------------------------------------------------------------------------------- */

/* One row's factor x by genmodel's proximal gradient descent (GlrmMojoModel.score0 after the
 * start): the same loop, losses, regularizers and order of sums as glrm.py's one-row path.
 * Categorical columns: loss 0 Categorical, 1 Ordinal; numeric: 0 Quadratic, 1 Absolute, 2 Huber,
 * 3 Poisson, 4 Logistic, 5 Hinge; regularizer: 0 None, 1 Quadratic, 2 L2, 3 L1, 4 NonNegative. */
typedef struct {
    Py_ssize_t k, n_cats, n_nums;
    const int32_t *cat_loss, *cat_level, *cat_levels;
    const double *cat_cols; /* per categorical, per level: the archetype column (k values) */
    const int32_t *num_loss;
    const double *num_value, *num_cols;
    int reg;
    double gamma;
} Glrm;

static inline double positive(double t) { return t > 0 || isnan(t) ? t : 0.0; }

static inline double glrm_dot(const double *x, const double *col, Py_ssize_t k) {
    double p = 0.0;
    for (Py_ssize_t i = 0; i < k; i++)
        p += x[i] * col[i];
    return p;
}

static double glrm_loss(int loss, double u, double a) {
    double x;
    switch (loss) {
    case 0: return (u - a) * (u - a);
    case 1: return fabs(u - a);
    case 2:
        x = u - a;
        return x > 1 ? x - 0.5 : x < -1 ? -x - 0.5 : 0.5 * x * x;
    case 3: return exp(u) + (a == 0 ? 0.0 : -a * u + a * log(a) - a);
    case 4: return log(1 + exp((1 - 2 * a) * u));
    default: return positive(1 + (1 - 2 * a) * u);
    }
}

static double glrm_grad(int loss, double u, double a) {
    double d, s = 1 - 2 * a;
    switch (loss) {
    case 0: return 2 * (u - a);
    case 1:
        d = u - a;
        return isnan(d) || d == 0 ? d : copysign(1.0, d);
    case 2:
        d = u - a;
        return d > 1 ? 1.0 : d < -1 ? -1.0 : d;
    case 3: return exp(u) - a;
    case 4: return s / (1 + exp(-s * u));
    default: return 1 + s * u > 0 ? s : 0.0;
    }
}

static double glrm_regularize(const Glrm *g, const double *x) {
    if (g->reg == 0)
        return 0.0;
    if (g->reg == 4) {
        for (Py_ssize_t i = 0; i < g->k; i++)
            if (x[i] < 0)
                return INFINITY;
        return 0.0;
    }
    double s = 0.0;
    for (Py_ssize_t i = 0; i < g->k; i++)
        s += g->reg == 3 ? fabs(x[i]) : x[i] * x[i];
    return g->reg == 2 ? sqrt(s) : s;
}

/* rproxgrad of u in place */
static void glrm_prox(const Glrm *g, double *u, double delta) {
    if (g->reg == 0 || delta == 0)
        return;
    if (g->reg == 1) {
        const double f = 1 / (1 + 2 * delta);
        for (Py_ssize_t i = 0; i < g->k; i++)
            u[i] = u[i] * f;
    } else if (g->reg == 2) {
        double norm2 = 0.0;
        for (Py_ssize_t i = 0; i < g->k; i++)
            norm2 += u[i] * u[i];
        const double weight = 1 - delta / sqrt(norm2);
        for (Py_ssize_t i = 0; i < g->k; i++)
            u[i] = weight < 0 ? 0.0 : weight * u[i];
    } else if (g->reg == 3) {
        for (Py_ssize_t i = 0; i < g->k; i++) {
            const double lo = u[i] + delta;
            u[i] = positive(u[i] - delta) + (isnan(lo) ? NAN : (lo <= 0.0 ? lo : 0.0));
        }
    } else {
        for (Py_ssize_t i = 0; i < g->k; i++)
            u[i] = positive(u[i]);
    }
}

/* the objective at x; with grad, also its gradient (products kept in work, k per level) */
static double glrm_objective(const Glrm *g, const double *x, double *grad, double *work) {
    const Py_ssize_t k = g->k;
    double res = 0.0;
    const double *cols = g->cat_cols;
    if (grad)
        for (Py_ssize_t i = 0; i < k; i++)
            grad[i] = 0.0;
    for (Py_ssize_t c = 0; c < g->n_cats; c++) {
        const Py_ssize_t levels = g->cat_levels[c];
        const int32_t a = g->cat_level[c];
        for (Py_ssize_t lv = 0; lv < levels; lv++)
            work[lv] = glrm_dot(x, cols + lv * k, k);
        double s = 0.0;
        if (g->cat_loss[c] == 0) {
            for (Py_ssize_t lv = 0; lv < levels; lv++)
                s += positive(1 + work[lv]);
            s = s + (positive(1 - work[a]) - positive(1 + work[a]));
        } else {
            for (Py_ssize_t i = 0; i < levels - 1; i++)
                s += a > i ? positive(1 - work[i]) : 1.0;
        }
        res += s;
        if (grad) {
            for (Py_ssize_t lv = 0; lv < levels; lv++) { /* the level's gradient, in work */
                double gv;
                if (g->cat_loss[c] == 0)
                    gv = lv == a ? (1 - work[a] > 0 ? -1.0 : 0.0) : (1 + work[lv] > 0 ? 1.0 : 0.0);
                else
                    gv = lv < levels - 1 && a > lv && 1 - work[lv] > 0 ? -1.0 : 0.0;
                work[levels + lv] = gv;
            }
            for (Py_ssize_t i = 0; i < k; i++) {
                double acc = grad[i];
                for (Py_ssize_t lv = 0; lv < levels; lv++)
                    acc += work[levels + lv] * cols[lv * k + i];
                grad[i] = acc;
            }
        }
        cols += levels * k;
    }
    for (Py_ssize_t j = 0; j < g->n_nums; j++) {
        const double *col = g->num_cols + j * k;
        const double u = glrm_dot(x, col, k);
        res += glrm_loss(g->num_loss[j], u, g->num_value[j]);
        if (grad) {
            const double gl = glrm_grad(g->num_loss[j], u, g->num_value[j]);
            for (Py_ssize_t i = 0; i < k; i++)
                grad[i] += gl * col[i];
        }
    }
    return grad ? res : res + g->gamma * glrm_regularize(g, x);
}

static void glrm_descend(const Glrm *g, double *x, double *buf) {
    const Py_ssize_t k = g->k;
    double *grad = buf, *u = buf + k, *best = buf + 2 * k, *work = buf + 3 * k;
    double old = glrm_objective(g, x, NULL, work);
    for (int iter = 0; iter < 100; iter++) {
        if (old == 0)
            break;
        glrm_objective(g, x, grad, work);
        const double scale = old > 10 ? 1.0 / old : 1.0;
        double lowest = DBL_MAX;
        for (Py_ssize_t i = 0; i < k; i++)
            best[i] = 0.0;
        double alpha0 = 1.0;
        for (int step = 0; step < 10; step++) {
            alpha0 *= 0.5;
            const double alpha = alpha0 * scale;
            for (Py_ssize_t i = 0; i < k; i++)
                u[i] = x[i] - alpha * grad[i];
            glrm_prox(g, u, alpha * g->gamma);
            const double obj = glrm_objective(g, u, NULL, work);
            if (lowest > obj) {
                memcpy(best, u, sizeof(double) * (size_t)k);
                lowest = obj;
            }
            if (obj == 0)
                break;
        }
        if (lowest < old)
            memcpy(x, best, sizeof(double) * (size_t)k);
        const double improvement = 1 - lowest / old;
        old = lowest;
        if (improvement < 0 || improvement < 1e-10)
            break;
    }
}

/* glrm_row(x, k, cat_loss, cat_level, cat_levels, cat_cols, num_loss, num_value, num_cols, reg,
 * gamma): x (the projected start) becomes the row's factor. */
static PyObject *glrm_row(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer x, cl, cv, cn, cc, nl, nv, nc;
    Glrm g;
    if (!PyArg_ParseTuple(args, "w*ny*y*y*y*y*y*y*id", &x, &g.k, &cl, &cv, &cn, &cc, &nl, &nv, &nc,
                          &g.reg, &g.gamma))
        return NULL;
    g.n_cats = cl.len / (Py_ssize_t)sizeof(int32_t);
    g.n_nums = nl.len / (Py_ssize_t)sizeof(int32_t);
    Py_ssize_t total_levels = 0, most = 1;
    int ok = g.k > 0 && x.len >= (Py_ssize_t)(g.k * sizeof(double)) && g.reg >= 0 && g.reg <= 4 &&
             cv.len == cl.len && cn.len == cl.len && nv.len == g.n_nums * (Py_ssize_t)sizeof(double) &&
             nc.len == g.n_nums * g.k * (Py_ssize_t)sizeof(double);
    if (ok) {
        const int32_t *levels = cn.buf, *level = cv.buf;
        for (Py_ssize_t c = 0; c < g.n_cats && ok; c++) {
            ok = levels[c] > 0 && level[c] >= 0 && level[c] < levels[c];
            total_levels += levels[c];
            most = levels[c] > most ? levels[c] : most;
        }
        ok = ok && cc.len == total_levels * g.k * (Py_ssize_t)sizeof(double);
    }
    double *buf = ok ? malloc(sizeof(double) * (size_t)(3 * g.k + 2 * most)) : NULL;
    if (ok && buf) {
        g.cat_loss = cl.buf;
        g.cat_level = cv.buf;
        g.cat_levels = cn.buf;
        g.cat_cols = cc.buf;
        g.num_loss = nl.buf;
        g.num_value = nv.buf;
        g.num_cols = nc.buf;
        glrm_descend(&g, x.buf, buf);
    }
    free(buf);
    Py_buffer *all[] = {&x, &cl, &cv, &cn, &cc, &nl, &nv, &nc};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        PyBuffer_Release(all[i]);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "glrm_row: array sizes do not match");
        return NULL;
    }
    if (!buf)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"tree_sums", tree_sums, METH_VARARGS, "Per-row, per-class sums of the trees' leaf values."},
    {"tree_shap", tree_shap, METH_VARARGS, "SHAP contributions of tree ensembles, float32."},
    {"tree_check", tree_check, METH_VARARGS, "Validate one compressed tree; its depth."},
    {"tree_walk", tree_walk, METH_VARARGS, "Per-row, per-class leaf sums from compressed trees."},
    {"tree_row", tree_row, METH_VARARGS, "tree_walk for one row given as a sequence."},
    {"tree_flatten", tree_flatten, METH_VARARGS, "Compressed trees decoded into tree_sums' records."},
    {"tree_flat_row", tree_flat_row, METH_VARARGS, "tree_sums for one row given as a sequence."},
    {"xgb_check", xgb_check, METH_VARARGS, "Validate one XGBoost tree; its top feature and depth."},
    {"xgb_flatten", xgb_flatten, METH_VARARGS, "XGBoost trees as branch-free node records."},
    {"xgb_score", xgb_score, METH_VARARGS, "XGBoost outputs in float32, rows in place."},
    {"encode_record", encode_record, METH_VARARGS, "One JSON-typed record as a row, or None."},
    {"encode_records", encode_records, METH_VARARGS, "JSON-typed records into a matrix."},
    {"glm_eta", glm_eta, METH_VARARGS, "GLM's linear predictor for one row."},
    {"activate", activate, METH_VARARGS, "A hidden layer's activation, in place."},
    {"layer", layer, METH_VARARGS, "One dense layer, summed as NeuralNetwork.formNNInputs."},
    {"glrm_row", glrm_row, METH_VARARGS, "One GLRM row's factor by genmodel's descent."},
    {"maxout_layer", maxout_layer, METH_VARARGS, "One Maxout layer: channel sums, then each unit's largest."},
    {"first_bad_code", first_bad_code, METH_VARARGS, "The first column with an invalid level code."},
    {"plan_trees", plan_trees, METH_VARARGS, "A one-row plan for a forest."},
    {"plan_xgb", plan_xgb, METH_VARARGS, "A one-row plan for an XGBoost booster."},
    {"plan_glm", plan_glm, METH_VARARGS, "A one-row plan for a GLM."},
    {"plan_se", plan_se, METH_VARARGS, "A one-row plan for a StackedEnsemble."},
    {"plan_row", plan_row, METH_VARARGS, "One row's preds through a plan, or None."},
    {"plan_record", (PyCFunction)(void (*)(void))plan_record, METH_FASTCALL,
     "One dict record's output dict through a plan, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels", "Compiled inner loops of the native MOJO scorer.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
