/* reference.c: the definitions, written as plainly as possible: the naive 2x2 "same" convolution
 * (any channel counts) and max pooling. The tests hold every kernel set against these; nothing
 * fast calls them. */
#include <string.h>

#include "pt_layers.h"

void pt_conv2x2_forward_naive(float *out, const float *x, const float *kernel, const float *bias,
                              int B, int H, int W, int Cin, int Cout) {
    for (int b = 0; b < B; b++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                for (int co = 0; co < Cout; co++) {
                    float sum = bias ? bias[co] : 0.0f;
                    for (int a = 0; a < 2; a++)
                        for (int c = 0; c < 2; c++) {
                            if (i + a >= H || j + c >= W) continue; /* zero padding */
                            const float *px = x + (((size_t)b * H + i + a) * W + j + c) * Cin;
                            const float *pk = kernel + (size_t)(a * 2 + c) * Cin * Cout + co;
                            for (int ci = 0; ci < Cin; ci++) sum += px[ci] * pk[(size_t)ci * Cout];
                        }
                    out[(((size_t)b * H + i) * W + j) * Cout + co] = sum;
                }
}

void pt_conv2x2_backward_naive(float *dx, float *dkernel, float *dbias, const float *dout,
                               const float *x, const float *kernel,
                               int B, int H, int W, int Cin, int Cout) {
    if (dx) memset(dx, 0, (size_t)B * H * W * Cin * sizeof *dx);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                for (int co = 0; co < Cout; co++) {
                    float g = dout[(((size_t)b * H + i) * W + j) * Cout + co];
                    if (dbias) dbias[co] += g;
                    for (int a = 0; a < 2; a++)
                        for (int c = 0; c < 2; c++) {
                            if (i + a >= H || j + c >= W) continue;
                            size_t px = (((size_t)b * H + i + a) * W + j + c) * Cin;
                            size_t pk = (size_t)(a * 2 + c) * Cin * Cout + co;
                            for (int ci = 0; ci < Cin; ci++) {
                                if (dkernel) dkernel[pk + (size_t)ci * Cout] += x[px + ci] * g;
                                if (dx) dx[px + ci] += kernel[pk + (size_t)ci * Cout] * g;
                            }
                        }
                }
}

void pt_maxpool2_forward(float *out, uint8_t *argmax, const float *x, int B, int H, int W, int C) {
    int PH = H / 2, PW = W / 2;
    for (int b = 0; b < B; b++)
        for (int pi = 0; pi < PH; pi++)
            for (int pj = 0; pj < PW; pj++)
                for (int c = 0; c < C; c++) {
                    float best = 0.0f;
                    int idx = -1;
                    for (int q = 0; q < 4; q++) { /* window order (0,0) (0,1) (1,0) (1,1) */
                        float v = x[(((size_t)b * H + 2 * pi + q / 2) * W + 2 * pj + q % 2) * C + c];
                        if (idx < 0 || v > best) { best = v; idx = q; }
                    }
                    size_t o = (((size_t)b * PH + pi) * PW + pj) * C + c;
                    out[o] = best;
                    argmax[o] = (uint8_t)idx;
                }
}
