/* fuzz.h — what the fuzz tests (test_ckpt_fuzz.c, test_data_fuzz.c) share:
 * each case runs in a forked child that ends with one of the codes below,
 * and the parent tallies how it ended. A crash ends the child by its
 * signal (also ASan's and UBSan's aborts), a hang by the child's alarm.
 * Header-only, for the tests; include it after <cmocka.h>. */
#ifndef MIMO_TESTS_FUZZ_H
#define MIMO_TESTS_FUZZ_H

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* How a child ends: opened or loaded (ACCEPTED), refused with a message
 * (REJECTED), refused without one (MUTE), or loaded wrong (WRONG). */
enum { FUZZ_ACCEPTED = 10, FUZZ_REJECTED = 11, FUZZ_MUTE = 12, FUZZ_WRONG = 13 };

typedef struct {
    int tried, accepted, rejected; /* the clean ends */
    int crash, hang, mute, wrong;  /* each must stay 0 */
} fuzz_tally;

/* In the child, first: crash signals end it (not cmocka's handlers, which
 * would carry on in the child, teardown included), and a hang ends at the
 * alarm. */
static inline void fuzz_child_begin(unsigned seconds)
{
    int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        signal(sigs[i], SIG_DFL);
    alarm(seconds);
}

/* Runs child(arg) in a forked process (it _exits with a FUZZ_ code) and
 * tallies its end into t; a bad end is printed with the case's name. */
static inline void fuzz_run(fuzz_tally *t, void (*child)(void *), void *arg,
                            const char *what)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        child(arg);
        _exit(FUZZ_MUTE); /* a child must say how it ended */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    t->tried++;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
        t->hang++;
        printf("HANG: %s\n", what);
    } else if (code == FUZZ_ACCEPTED || code == FUZZ_REJECTED) {
        t->accepted += code == FUZZ_ACCEPTED;
        t->rejected += code == FUZZ_REJECTED;
    } else if (code == FUZZ_MUTE) {
        t->mute++;
        printf("AN ERROR WITHOUT A MESSAGE: %s\n", what);
    } else if (code == FUZZ_WRONG) {
        t->wrong++;
        printf("SILENTLY WRONG: %s\n", what);
    } else {
        t->crash++;
        printf("CRASH (status %d): %s\n", status, what);
    }
}

/* Copies a file (the base file to the case's working copy). */
static inline void fuzz_copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[65536];
    size_t n;
    assert_non_null(a);
    assert_non_null(b);
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        assert_int_equal(fwrite(buf, 1, n, b), n);
    fclose(a);
    fclose(b);
}

#endif
