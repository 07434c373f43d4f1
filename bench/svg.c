/* svg.c - latency percentile curves from allot-bench JSON results, drawn as one SVG.
 * x: percentile on a "nines" axis (x = -log10(1 - p), so 90%, 99%, 99.9% are equally spaced);
 * y: latency on a log scale. One coloured curve per result file, with a legend. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define SVG_WIDTH      960
#define SVG_HEIGHT     600
#define SVG_LEFT       80
#define SVG_RIGHT      40
#define SVG_TOP        50
#define SVG_BOTTOM     70

typedef struct curve {
    char label[160];
    double throughput;
    int count;
    double nines[SVG_POINTS_MAX], latency_us[SVG_POINTS_MAX];
} curve_t;

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static int curve_load(const char *path, curve_t *c, char *error, size_t bytes)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (root == NULL) {
        snprintf(error, bytes, "%s:%d: %s", path, jerr.line, jerr.text);
        return -1;
    }
    json_t *points = json_object_get(root, "curve");
    const char *label = json_string_value(json_object_get(root, "label"));
    snprintf(c->label, sizeof(c->label), "%s", label ? label : path);
    c->throughput = json_number_value(json_object_get(root, "throughput_per_s"));
    c->count = 0;
    if (!json_is_array(points) || json_array_size(points) == 0) {
        snprintf(error, bytes, "%s: no \"curve\" (not an allot-bench result?)", path);
        json_decref(root);
        return -1;
    }
    size_t n = json_array_size(points);
    for (size_t i = 0; i < n && c->count < SVG_POINTS_MAX; i++) {
        json_t *pt = json_array_get(points, i);
        double p = json_number_value(json_array_get(pt, 0));
        double us = json_number_value(json_array_get(pt, 1));
        double nines =
            p >= 100.0 ? (c->count ? c->nines[c->count - 1] + 0.05 : 0.0) : -log10(1.0 - p / 100.0);
        c->nines[c->count] = nines;
        c->latency_us[c->count] = us > 0.1 ? us : 0.1;
        c->count++;
    }
    json_decref(root);
    return 0;
}

static const char *nines_label(int k, char *buf, size_t bytes)
{
    static const char *const labels[] = {"0%",     "90%",     "99%",      "99.9%",
                                         "99.99%", "99.999%", "99.9999%", "99.99999%"};
    snprintf(buf, bytes, "%s", k < 8 ? labels[k] : "max");
    return buf;
}

static const char *latency_label(int decade, char *buf, size_t bytes)
{
    static const char *const units[] = {"us", "ms", "s"};
    int unit = decade / 3;
    if (decade < 0)
        snprintf(buf, bytes, "%gus", pow(10, decade));
    else if (unit > 2)
        snprintf(buf, bytes, "%gs", pow(10, decade - 6));
    else
        snprintf(buf, bytes, "%d%s", (int)pow(10, decade % 3), units[unit]);
    return buf;
}

static void svg_axes(FILE *f, int x_max, int y_lo, int y_hi)
{
    double pw = SVG_WIDTH - SVG_LEFT - SVG_RIGHT, ph = SVG_HEIGHT - SVG_TOP - SVG_BOTTOM;
    char buf[32];
    fprintf(f, "<rect x='%d' y='%d' width='%.0f' height='%.0f' fill='none' stroke='#333'/>\n",
            SVG_LEFT, SVG_TOP, pw, ph);
    for (int k = 0; k <= x_max; k++) {
        double x = SVG_LEFT + pw * k / x_max;
        fprintf(f, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%.0f' stroke='#ddd'/>\n", x, SVG_TOP, x,
                SVG_TOP + ph);
        fprintf(f, "<text x='%.1f' y='%.0f' text-anchor='middle'>%s</text>\n", x, SVG_TOP + ph + 20,
                nines_label(k, buf, sizeof(buf)));
    }
    for (int d = y_lo; d <= y_hi; d++) {
        double y = SVG_TOP + ph - ph * (d - y_lo) / (y_hi - y_lo);
        fprintf(f, "<line x1='%d' y1='%.1f' x2='%.0f' y2='%.1f' stroke='#ddd'/>\n", SVG_LEFT, y,
                SVG_LEFT + pw, y);
        fprintf(f, "<text x='%d' y='%.1f' text-anchor='end'>%s</text>\n", SVG_LEFT - 6, y + 4,
                latency_label(d, buf, sizeof(buf)));
    }
    fprintf(f, "<text x='%.0f' y='%d' text-anchor='middle'>percentile</text>\n", SVG_LEFT + pw / 2,
            SVG_HEIGHT - 20);
    fprintf(f,
            "<text x='20' y='%.0f' text-anchor='middle' transform='rotate(-90 20 %.0f)'>"
            "latency (log scale)</text>\n",
            SVG_TOP + ph / 2, SVG_TOP + ph / 2);
}

static void svg_curve(FILE *f, const curve_t *c, int index, int x_max, int y_lo, int y_hi)
{
    double pw = SVG_WIDTH - SVG_LEFT - SVG_RIGHT, ph = SVG_HEIGHT - SVG_TOP - SVG_BOTTOM;
    const char *color = colors[index % 10];
    fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", color);
    for (int i = 0; i < c->count; i++) {
        double nines = c->nines[i] < x_max ? c->nines[i] : x_max;
        double x = SVG_LEFT + pw * nines / x_max;
        double y = SVG_TOP + ph - ph * (log10(c->latency_us[i]) - y_lo) / (y_hi - y_lo);
        fprintf(f, "%.1f,%.1f ", x, y);
    }
    fprintf(f, "'/>\n");
    double ly = SVG_TOP + 18 + 18 * index;
    fprintf(f, "<line x1='%d' y1='%.0f' x2='%d' y2='%.0f' stroke='%s' stroke-width='3'/>\n",
            SVG_LEFT + 12, ly - 4, SVG_LEFT + 36, ly - 4, color);
    fprintf(f, "<text x='%d' y='%.0f'>", SVG_LEFT + 42, ly);
    for (const char *s = c->label; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
    fprintf(f, " (%.0f/s)</text>\n", c->throughput);
}

int svg_plot(const char *svg_path, const char *const *json_paths, int count, char *error,
             size_t bytes)
{
    static curve_t curves[SVG_CURVES_MAX];
    if (count < 1 || count > SVG_CURVES_MAX) {
        snprintf(error, bytes, "plot takes 1..%d JSON result files", SVG_CURVES_MAX);
        return -1;
    }
    double nines_max = 1.0, lat_min = 1e30, lat_max = 0.0;
    for (int i = 0; i < count; i++) {
        if (curve_load(json_paths[i], &curves[i], error, bytes) != 0)
            return -1;
        for (int k = 0; k < curves[i].count; k++) {
            if (curves[i].nines[k] > nines_max)
                nines_max = curves[i].nines[k];
            if (curves[i].latency_us[k] < lat_min)
                lat_min = curves[i].latency_us[k];
            if (curves[i].latency_us[k] > lat_max)
                lat_max = curves[i].latency_us[k];
        }
    }
    int x_max = (int)ceil(nines_max);
    if (x_max > 7)
        x_max = 7;
    int y_lo = (int)floor(log10(lat_min)), y_hi = (int)ceil(log10(lat_max));
    if (y_hi <= y_lo)
        y_hi = y_lo + 1;
    FILE *f = fopen(svg_path, "w");
    if (f == NULL) {
        snprintf(error, bytes, "%s: cannot write", svg_path);
        return -1;
    }
    fprintf(f,
            "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
            "font-family='sans-serif' font-size='13'>\n",
            SVG_WIDTH, SVG_HEIGHT);
    fprintf(f, "<rect width='100%%' height='100%%' fill='white'/>\n");
    fprintf(f, "<text x='%d' y='28' font-size='16'>allot-bench latency by percentile</text>\n",
            SVG_LEFT);
    svg_axes(f, x_max, y_lo, y_hi);
    for (int i = 0; i < count; i++)
        svg_curve(f, &curves[i], i, x_max, y_lo, y_hi);
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0) {
        snprintf(error, bytes, "%s: write failed", svg_path);
        return -1;
    }
    return 0;
}
