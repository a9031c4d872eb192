package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	// The adapters whose URL schemes the commands accept.
	_ "github.com/stratacache/strata/backplane/natsbackplane"
	_ "github.com/stratacache/strata/backplane/rabbitbackplane"
	_ "github.com/stratacache/strata/backplane/redisbackplane"
	_ "github.com/stratacache/strata/l2/natskvl2"
	_ "github.com/stratacache/strata/l2/redisl2"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailed  = 1 // the command ran and something failed
	exitUsage   = 2 // bad flags or arguments
	programName = "strata"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"invalidate", "remove or expire keys, tags or a whole cache, on L2 and the backplane", runInvalidate},
		{"watch", "print a cache's backplane messages live, decoded", runWatch},
		{"inspect", "print the L2 envelope stored for a key", runInspect},
	}
}

// run runs the command line args (without the program name) and returns the
// exit status. Output goes to stdout, diagnostics to stderr. ctx ends the
// command early (watch runs until it is done).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n", programName, args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s <command> [flags]\n\nCommands:\n", programName)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> -h' for a command's flags. Docs: docs/cli.md\n", programName)
}

// flagSet is a subcommand's flag.FlagSet with its help text.
type flagSet struct {
	*flag.FlagSet
	cmd, synopsis, about string
	stderr               io.Writer
}

// newFlagSet returns the flag set of subcommand cmd. Parse errors go to
// stderr; the help, asked with -h, goes to stdout (see parse).
func newFlagSet(cmd, synopsis, about string, stderr io.Writer) *flagSet {
	fs := flag.NewFlagSet(programName+" "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	// The flag package calls Usage on -h and on every error: parse prints
	// the help itself, on -h only.
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, cmd: cmd, synopsis: synopsis, about: about, stderr: stderr}
}

// parse parses args. It returns -1 when the command should go on, else the
// exit status: 0 for -h (the help went to stdout), 2 for a bad flag (the
// flag package's message, naming it, went to stderr).
func (fs *flagSet) parse(args []string, stdout io.Writer) int {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return -1
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "Usage: %s %s %s\n\n%s\n\nFlags:\n", programName, fs.cmd, fs.synopsis, fs.about)
		fs.PrintDefaults()
		fs.SetOutput(fs.stderr)
		return exitOK
	}
	fmt.Fprintf(fs.stderr, "Run '%s %s -h' for usage.\n", programName, fs.cmd)
	return exitUsage
}

// usageError reports a bad flag value or argument and returns exitUsage.
func usageError(stderr io.Writer, cmd, format string, args ...any) int {
	fmt.Fprintf(stderr, "%s %s: %s\n", programName, cmd, fmt.Sprintf(format, args...))
	fmt.Fprintf(stderr, "Run '%s %s -h' for usage.\n", programName, cmd)
	return exitUsage
}

// failure reports an error of a command that ran and returns exitFailed.
func failure(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "%s %s: %v\n", programName, cmd, err)
	return exitFailed
}
