/* pt_signals.h: the stop flag. SIGINT, SIGTERM and SIGUSR1 (a batch system's warning before its
 * time limit) set a flag that the training loops and the trial scheduler poll, so a run stops at
 * a step boundary, saves what it has and exits resumably instead of dying mid-write. */
#ifndef PT_SIGNALS_H
#define PT_SIGNALS_H

/* Installs the handlers (idempotent; call again after a library may have replaced them). */
void pt_install_signal_handlers(void);
/* Whether a stop signal has arrived. */
int pt_stop_requested(void);
/* The signal number received, 0 if none. */
int pt_stop_signal(void);
/* As if signum had arrived (tests, and test-only stopping points of the runner). */
void pt_request_stop(int signum);

#endif
