// Prints the serial of the calling process's session keyring (0 when it has none).
#include <linux/keyctl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    long serial = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    printf("session keyring %ld\n", serial < 0 ? 0 : serial);
    return 0;
}
