package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// reexecInUserNS runs this nfq command again inside a new user namespace
// (in which it is root, mapped to the caller's uid and gid) and a new
// network namespace, for a caller without privileges. Its exit status
// becomes ours.
func reexecInUserNS(ctx context.Context, e *env) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("needs root, or a user namespace: %w", err)
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, e.stdout, e.stderr
	cmd.Env = append(os.Environ(), usernsEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL,
	}
	e.log.Debug("not root: running in a new user namespace", "uid", os.Getuid())
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("needs root, or unprivileged user namespaces (see sysctl user.max_user_namespaces and kernel.apparmor_restrict_unprivileged_userns): %w", err)
	}
	// Ctrl-C reaches the child too when it comes from a terminal (same
	// process group); a signal sent to us alone is passed on. The child
	// cleans up and exits, and we wait for it.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(os.Interrupt)
		case <-done:
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		// The child printed its own reason.
		os.Exit(ee.ExitCode())
	}
	return err
}
