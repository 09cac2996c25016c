/* Native scan loop: Hyperscan (libhs) block scans with match filtering in C, not Python.
 *
 * The Python binding calls back into Python for every match, so a log with thousands of
 * harmless lines that a rule's literal hits (npm WARN ... ENOENT) pays a Python call per
 * line. Here the match callback keeps one candidate per rule and line, drops hits on
 * lines that are surely warnings for the rules Python says have enough of those, and
 * stops after `limit` candidates so Python can confirm them and resume with fresh flags.
 * Nothing here decides a verdict: Python's confirming regexes do that.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <hs/hs.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

typedef struct {
    PyObject_HEAD
    hs_database_t *db;
    hs_database_t *warning_db;
    hs_scratch_t *scratch;
    hs_scratch_t *warning_scratch;
    unsigned int rules;
} Scanner;

typedef struct {
    const char *data;        /* the whole block */
    Py_ssize_t base;         /* offset of the scanned part in the block */
    Py_ssize_t size;         /* block size */
    const unsigned char *skip_warnings;  /* per rule: 1 drops surely-warning lines, 2 all */
    Py_ssize_t *last_line;   /* per rule: start of the line last kept (-1 none) */
    Py_ssize_t *out;         /* pairs (line start, rule) */
    Py_ssize_t count;
    Py_ssize_t limit;
    Py_ssize_t stop_after;   /* end of the line that filled the limit (-1 while below) */
    Py_ssize_t resume;       /* where the next call starts (-1: scanned to the end) */
    Scanner *scanner;
} ScanContext;

static int on_warning(unsigned int id, unsigned long long from, unsigned long long to,
                      unsigned int flags, void *ctx) {
    (void)id; (void)from; (void)to; (void)flags;
    *(int *)ctx = 1;
    return 1;  /* one match is the answer */
}

static int is_surely_warning(ScanContext *c, Py_ssize_t start, Py_ssize_t end) {
    /* A carriage return means cleaning keeps another frame: not sure, let Python judge. */
    if (memchr(c->data + start, '\r', (size_t)(end - start)) != NULL) {
        return 0;
    }
    int found = 0;
    hs_scan(c->scanner->warning_db, c->data + start, (unsigned int)(end - start), 0,
            c->scanner->warning_scratch, on_warning, &found);
    return found;
}

static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
                    unsigned int flags, void *ctx) {
    (void)from; (void)flags;
    ScanContext *c = (ScanContext *)ctx;
    if (c->skip_warnings[id] >= 2) {
        return 0;  /* the rule holds all the hits it may keep */
    }
    Py_ssize_t end = c->base + (Py_ssize_t)to;
    if (c->stop_after >= 0 && end > c->stop_after) {
        c->resume = c->stop_after + 1;
        return 1;
    }
    /* Scan forms never cross a newline, so the match's line starts after the last one. */
    const char *hit = c->data + end - (end > c->base ? 1 : 0);
    Py_ssize_t start = c->base;
    if (hit > c->data + c->base) {
        const char *nl = memrchr(c->data + c->base, '\n', (size_t)(hit - (c->data + c->base)));
        start = nl ? (Py_ssize_t)(nl - c->data) + 1 : c->base;
    }
    if (c->last_line[id] == start) {
        return 0;
    }
    c->last_line[id] = start;
    const char *nl = memchr(c->data + end, '\n', (size_t)(c->size - end));
    Py_ssize_t line_end = nl ? (Py_ssize_t)(nl - c->data) : c->size;
    if (c->skip_warnings[id] && is_surely_warning(c, start, line_end)) {
        return 0;
    }
    c->out[2 * c->count] = start;
    c->out[2 * c->count + 1] = (Py_ssize_t)id;
    c->count++;
    if (c->count >= c->limit && c->stop_after < 0) {
        c->stop_after = line_end;  /* finish this line, then hand back to Python */
    }
    return 0;
}

static void Scanner_dealloc(Scanner *self) {
    if (self->scratch) hs_free_scratch(self->scratch);
    if (self->warning_scratch) hs_free_scratch(self->warning_scratch);
    if (self->db) hs_free_database(self->db);
    if (self->warning_db) hs_free_database(self->warning_db);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *compile_error(hs_compile_error_t *err) {
    PyErr_Format(PyExc_ValueError, "%d: %s", err->expression, err->message);
    hs_free_compile_error(err);
    return NULL;
}

static int Scanner_init(Scanner *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"expressions", "warning", NULL};
    PyObject *exprs;
    const char *warning;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Oy", names, &exprs, &warning)) {
        return -1;
    }
    if (self->db != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner is already initialised");
        return -1;
    }
    PyObject *seq = PySequence_Fast(exprs, "expressions must be a sequence of bytes");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n <= 0) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "no expressions");
        return -1;
    }
    const char **patterns = PyMem_Calloc((size_t)n, sizeof(char *));
    unsigned int *flags = PyMem_Calloc((size_t)n, sizeof(unsigned int));
    unsigned int *ids = PyMem_Calloc((size_t)n, sizeof(unsigned int));
    int rc = -1;
    if (!patterns || !flags || !ids) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyBytes_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "expressions must be bytes");
            goto done;
        }
        patterns[i] = PyBytes_AS_STRING(item);
        flags[i] = HS_FLAG_MULTILINE;
        ids[i] = (unsigned int)i;
    }
    hs_compile_error_t *err = NULL;
    if (hs_compile_multi(patterns, flags, ids, (unsigned int)n, HS_MODE_BLOCK, NULL, &self->db,
                         &err) != HS_SUCCESS) {
        compile_error(err);
        goto done;
    }
    if (hs_compile(warning, HS_FLAG_SINGLEMATCH, HS_MODE_BLOCK, NULL, &self->warning_db,
                   &err) != HS_SUCCESS) {
        compile_error(err);
        goto done;
    }
    if (hs_alloc_scratch(self->db, &self->scratch) != HS_SUCCESS ||
        hs_alloc_scratch(self->warning_db, &self->warning_scratch) != HS_SUCCESS) {
        PyErr_NoMemory();
        goto done;
    }
    self->rules = (unsigned int)n;
    rc = 0;
done:
    PyMem_Free(patterns);
    PyMem_Free(flags);
    PyMem_Free(ids);
    Py_DECREF(seq);
    return rc;
}

static PyObject *Scanner_scan(Scanner *self, PyObject *args) {
    Py_buffer block, skip;
    Py_ssize_t start, limit;
    if (!PyArg_ParseTuple(args, "y*ny*n", &block, &start, &skip, &limit)) {
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t *last_line = NULL, *out = NULL;
    if (skip.len != (Py_ssize_t)self->rules || start < 0 || start > block.len || limit < 1) {
        PyErr_SetString(PyExc_ValueError, "bad start, limit or skip_warnings length");
        goto done;
    }
    if (block.len - start > (Py_ssize_t)0xFFFFFFFFu) {
        PyErr_SetString(PyExc_ValueError, "block too large");
        goto done;
    }
    /* Room for every rule on the line that filled the limit. */
    Py_ssize_t room = limit + (Py_ssize_t)self->rules;
    last_line = PyMem_Malloc(sizeof(Py_ssize_t) * self->rules);
    out = PyMem_Malloc(sizeof(Py_ssize_t) * 2 * (size_t)room);
    if (!last_line || !out) {
        PyErr_NoMemory();
        goto done;
    }
    for (unsigned int i = 0; i < self->rules; i++) last_line[i] = -1;
    ScanContext c = {block.buf, start, block.len, skip.buf, last_line, out, 0, limit, -1, -1,
                     self};
    hs_error_t rc;
    Py_BEGIN_ALLOW_THREADS
    rc = hs_scan(self->db, (const char *)block.buf + start, (unsigned int)(block.len - start), 0,
                 self->scratch, on_match, &c);
    Py_END_ALLOW_THREADS
    if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED) {
        PyErr_Format(PyExc_RuntimeError, "hs_scan failed: %d", (int)rc);
        goto done;
    }
    PyObject *hits = PyList_New(c.count);
    if (!hits) goto done;
    for (Py_ssize_t i = 0; i < c.count; i++) {
        PyObject *pair = Py_BuildValue("(nn)", out[2 * i], out[2 * i + 1]);
        if (!pair) {
            Py_DECREF(hits);
            goto done;
        }
        PyList_SET_ITEM(hits, i, pair);
    }
    Py_ssize_t resume = c.resume;
    if (resume >= block.len) resume = -1;
    result = Py_BuildValue("(Nn)", hits, resume);
done:
    PyMem_Free(last_line);
    PyMem_Free(out);
    PyBuffer_Release(&block);
    PyBuffer_Release(&skip);
    return result;
}

/* Newlines in p[0:n], in one pass; when w is given the bytes are copied there too, and when
 * esc_seen is given it is set if an ESC byte was among them. Byte-wide counters are summed
 * every 255 vectors, before they can wrap. Callers pass w and esc_seen as constants, so the
 * compiler builds one loop for counting and one for copying. */
static inline Py_ssize_t count_copy(unsigned char *w, const unsigned char *p, Py_ssize_t n,
                                    int *esc_seen) {
    Py_ssize_t total = 0, i = 0;
    int esc_found = 0;
#if defined(__SSE2__)
    const __m128i nl = _mm_set1_epi8('\n'), esc = _mm_set1_epi8(0x1b), zero = _mm_setzero_si128();
    __m128i any_esc = zero;
    while (i + 16 <= n) {
        __m128i counts = zero;
        for (int k = 0; k < 255 && i + 16 <= n; k++, i += 16) {
            __m128i chunk = _mm_loadu_si128((const __m128i *)(p + i));
            if (w) _mm_storeu_si128((__m128i *)(w + i), chunk);
            counts = _mm_sub_epi8(counts, _mm_cmpeq_epi8(chunk, nl));
            if (esc_seen) any_esc = _mm_or_si128(any_esc, _mm_cmpeq_epi8(chunk, esc));
        }
        __m128i sums = _mm_sad_epu8(counts, zero);
        total += _mm_cvtsi128_si32(sums) + _mm_cvtsi128_si32(_mm_srli_si128(sums, 8));
    }
    esc_found = _mm_movemask_epi8(any_esc) != 0;
#endif
    for (; i < n; i++) {
        if (w) w[i] = p[i];
        total += p[i] == '\n';
        esc_found |= p[i] == 0x1b;
    }
    if (esc_seen) *esc_seen |= esc_found;
    return total;
}

static PyObject *count_lines(PyObject *module, PyObject *args) {
    (void)module;
    Py_buffer block;
    Py_ssize_t start, end;
    if (!PyArg_ParseTuple(args, "y*nn", &block, &start, &end)) {
        return NULL;
    }
    if (start < 0) start = 0;
    if (end > block.len) end = block.len;
    Py_ssize_t total = end > start
        ? count_copy(NULL, (const unsigned char *)block.buf + start, end - start, NULL) : 0;
    PyBuffer_Release(&block);
    return PyLong_FromSsize_t(total);
}

/* Length of the CSI sequence (ESC [ params intermediates final) at p, 0 if there is none:
 * the same bytes as cleaning's CSI pattern, \x1b\[[0-9;?<=>]*[ -/]*[@-~]. */
static Py_ssize_t csi_length(const unsigned char *p, const unsigned char *end) {
    const unsigned char *q = p + 2;
    if (q > end || p[1] != '[') return 0;
    while (q < end && ((*q >= '0' && *q <= '9') || *q == ';' || (*q >= '<' && *q <= '?'))) q++;
    while (q < end && *q >= ' ' && *q <= '/') q++;
    if (q < end && *q >= '@' && *q <= '~') return q + 1 - p;
    return 0;
}

/* Removes CSI sequences in place; returns the new length. */
static Py_ssize_t strip_in_place(unsigned char *buf, Py_ssize_t len) {
    unsigned char *end = buf + len, *w = buf, *p = buf;
    unsigned char *esc = memchr(buf, 0x1b, (size_t)len);
    if (esc == NULL) return len;
    w = esc;
    p = esc;
    while (esc != NULL) {
        if (esc != p) {
            memmove(w, p, (size_t)(esc - p));
            w += esc - p;
        }
        Py_ssize_t skip = csi_length(esc, end);
        if (skip == 0) {
            *w++ = *esc;
            skip = 1;
        }
        p = esc + skip;
        esc = p < end ? memchr(p, 0x1b, (size_t)(end - p)) : NULL;
    }
    memmove(w, p, (size_t)(end - p));
    w += end - p;
    return w - buf;
}

static PyObject *strip_into(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *out;
    Py_buffer head, body;
    Py_ssize_t start, end;
    if (!PyArg_ParseTuple(args, "O!y*y*nn", &PyByteArray_Type, &out, &head, &body, &start,
                          &end)) {
        return NULL;
    }
    PyObject *result = NULL;
    if (start < 0 || end > body.len || start > end) {
        PyErr_SetString(PyExc_ValueError, "bad start or end");
        goto done;
    }
    Py_ssize_t total = head.len + (end - start);
    if (PyByteArray_Resize(out, total) < 0) goto done;
    unsigned char *w = (unsigned char *)PyByteArray_AS_STRING(out);
    int esc_seen = 0;
    Py_ssize_t lines = count_copy(w, head.buf, head.len, &esc_seen)
        + count_copy(w + head.len, (const unsigned char *)body.buf + start, end - start,
                     &esc_seen);
    /* After the copy: a code may straddle the carried head and the new chunk. Codes hold no
     * newline, so the count stands. */
    if (esc_seen) {
        Py_ssize_t kept = strip_in_place(w, total);
        if (kept != total && PyByteArray_Resize(out, kept) < 0) goto done;
    }
    result = PyLong_FromSsize_t(lines);
done:
    PyBuffer_Release(&head);
    PyBuffer_Release(&body);
    return result;
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)Scanner_scan, METH_VARARGS,
     "scan(block, start, skip_warnings, limit) -> ([(line_start, rule), ...], resume)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pipeline_recovery._native_scan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
    .tp_doc = "A compiled block-mode database of scan forms and a warning-line test.",
};

static PyMethodDef module_methods[] = {
    {"count_lines", count_lines, METH_VARARGS, "count_lines(block, start, end) -> int"},
    {"strip_into", strip_into, METH_VARARGS,
     "strip_into(out, head, body, start, end) -> newlines: out = head + body[start:end], CSI removed"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native_scan",
    "Hyperscan block scans with match filtering in C.", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native_scan(void) {
    if (PyType_Ready(&ScannerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
