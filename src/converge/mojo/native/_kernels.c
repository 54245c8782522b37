/*
 * Compiled inner loops of the native scorer: tree walks (GBM/DRF/XRT) and DeepLearning layers.
 *
 * The Python side decodes the MOJO once and reduces every genmodel decision to plain arrays; these
 * loops only follow them. Sums run in genmodel's order (trees in order from 0.0, as
 * SharedTreeMojoModel.scoreTreeRange; eight interleaved partial sums, as
 * NeuralNetwork.formNNInputs), and the build turns off floating-point contraction, so results are
 * bit-identical to genmodel's and to the NumPy fallback that runs when no C compiler was present.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- trees ------------------------------------------------------------------------------------ */

enum { LEAF = 0, COMPARE = 1, TABLE = 2 };

/* One node, 32 bytes. A leaf keeps its value in thr. A compare node reads v[vc] (one of three
 * views of the row: NaN as -inf, NaN as +inf, is-missing) and goes right when it is >= thr.
 * A table node reads the integer level of column vc and looks it up in tables[tbl_off + slot]. */
typedef struct {
    double thr;
    int32_t vc, kind;
    int32_t child[2];
    int32_t tbl_off, tbl_len;
} Node;

enum { NA_SLOT = -1, OUTSIDE_SLOT = -2 };
#define LANES 4 /* walkers in flight per row: independent pointer chases overlap in the CPU */

typedef struct {
    const double *X, *cat_ub;
    Py_ssize_t n, nf, n_tpc, n_groups;
    const Node *nodes;
    const uint8_t *tables;
    const int32_t *roots;
    const int32_t *code_cols; /* the columns table nodes read */
    Py_ssize_t n_code_cols;
    double *out;
} Forest;

static inline int32_t step(const Node *p, const uint8_t *tables, const double *v,
                           const int64_t *code) {
    int r;
    if (p->kind == COMPARE) {
        r = v[p->vc] >= p->thr;
    } else {
        int64_t c = code[p->vc];
        Py_ssize_t slot = c == NA_SLOT ? 0 : (c < 0 || c >= p->tbl_len) ? 1 : (Py_ssize_t)c + 2;
        r = tables[p->tbl_off + slot];
    }
    return p->child[r];
}

/* The three views of one row (NaN as -inf, NaN as +inf, is-missing) and the integer level of each
 * column that a table node reads. Missing: NaN, or a level beyond the training domain (mojo >= 1.20;
 * cat_ub is NaN where that does not apply). */
static void row_views(const Forest *f, const double *x, double *v, int64_t *code) {
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
            double t = trunc(fmin(fmax(x[c], -2.0), 2147483648.0));
            code[c] = t < 0 ? OUTSIDE_SLOT : (int64_t)t;
        }
    }
}

/* Rows are taken LANES at a time and each tree is walked for all of them in step: the pointer
 * chases are independent, so the CPU overlaps them. A walker at its leaf stays there (nothing to
 * step) until the others of its group arrive. Leaf values are added per row in tree order. */
static void tree_rows(const Forest *f, double *v, int64_t *code) {
    const Py_ssize_t nf = f->nf, G = f->n_groups, V = 3 * nf;
    const Node *nodes = f->nodes;
    for (Py_ssize_t r0 = 0; r0 < f->n; r0 += LANES) {
        const int m = (int)(f->n - r0 < LANES ? f->n - r0 : LANES);
        for (int j = 0; j < m; j++)
            row_views(f, f->X + (r0 + j) * nf, v + j * V, code + j * nf);
        for (Py_ssize_t k = 0; k < f->n_tpc; k++) {
            const int32_t *roots = f->roots + k * G;
            double acc[LANES] = {0.0};
            for (Py_ssize_t g = 0; g < G; g++) {
                int32_t at[LANES];
                int moving = 0;
                for (int j = 0; j < m; j++) {
                    at[j] = roots[g];
                    moving |= nodes[at[j]].kind != LEAF;
                }
                while (moving) {
                    moving = 0;
                    for (int j = 0; j < m; j++) {
                        const Node *p = &nodes[at[j]];
                        if (p->kind != LEAF) {
                            at[j] = step(p, f->tables, v + j * V, code + j * nf);
                            moving |= nodes[at[j]].kind != LEAF;
                        }
                    }
                }
                for (int j = 0; j < m; j++)
                    acc[j] += nodes[at[j]].thr;
            }
            for (int j = 0; j < m; j++)
                f->out[(r0 + j) * f->n_tpc + k] = acc[j];
        }
    }
}

/* tree_sums(X, n, nf, nodes, tables, cat_ub, code_cols, roots, n_tpc, n_groups, out) */
static PyObject *tree_sums(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer X, nodes, tables, cat_ub, code_cols, roots, out;
    Forest f;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*y*y*nnw*", &X, &f.n, &f.nf, &nodes, &tables, &cat_ub,
                          &code_cols, &roots, &f.n_tpc, &f.n_groups, &out))
        return NULL;
    f.n_code_cols = code_cols.len / (Py_ssize_t)sizeof(int32_t);
    int ok = f.n >= 0 && f.nf >= 0 && f.n_tpc >= 0 && f.n_groups >= 0 &&
             X.len >= (Py_ssize_t)(f.n * f.nf * sizeof(double)) &&
             out.len >= (Py_ssize_t)(f.n * f.n_tpc * sizeof(double)) &&
             roots.len >= (Py_ssize_t)(f.n_tpc * f.n_groups * sizeof(int32_t)) &&
             cat_ub.len >= (Py_ssize_t)(f.nf * sizeof(double)) && nodes.len % sizeof(Node) == 0;
    for (Py_ssize_t i = 0; ok && i < f.n_code_cols; i++)
        ok = ((const int32_t *)code_cols.buf)[i] >= 0 && ((const int32_t *)code_cols.buf)[i] < f.nf;
    double *v = NULL;
    int64_t *code = NULL;
    if (ok) {
        v = malloc(sizeof(double) * (LANES * 3 * f.nf + 1));
        code = malloc(sizeof(int64_t) * (LANES * f.nf + 1));
    }
    if (ok && v && code) {
        f.X = X.buf;
        f.nodes = nodes.buf;
        f.tables = tables.buf;
        f.cat_ub = cat_ub.buf;
        f.roots = roots.buf;
        f.code_cols = code_cols.buf;
        f.out = out.buf;
        Py_BEGIN_ALLOW_THREADS tree_rows(&f, v, code);
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

static PyMethodDef methods[] = {
    {"tree_sums", tree_sums, METH_VARARGS, "Per-row, per-class sums of the trees' leaf values."},
    {"layer", layer, METH_VARARGS, "One dense layer, summed as NeuralNetwork.formNNInputs."},
    {"first_bad_code", first_bad_code, METH_VARARGS, "The first column with an invalid level code."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels", "Compiled inner loops of the native MOJO scorer.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
