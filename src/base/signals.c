/* signals.c: the stop flag set by SIGINT, SIGTERM and SIGUSR1 (see pt_signals.h). */
#define _POSIX_C_SOURCE 200809L
#include "pt_signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t g_stop_signal = 0;

static void on_signal(int signum) { g_stop_signal = signum; }

void pt_install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int pt_stop_requested(void) { return g_stop_signal != 0; }
int pt_stop_signal(void) { return (int)g_stop_signal; }
void pt_request_stop(int signum) { g_stop_signal = signum; }
