package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// envPrefix names the environment variables that give flags their values:
// --request-timeout is PCRS_INDEXER_REQUEST_TIMEOUT. A flag on the command
// line wins over the environment.
const envPrefix = "PCRS_INDEXER_"

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// command is one subcommand's flags and how it is called.
type command struct {
	name  string // "scan"
	args  string // "[flags] SOURCE"
	about string // one paragraph shown by --help
	fs    *flag.FlagSet
}

func newCommand(name, args, about string) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Parse errors are reported by parse, with one line and a hint, never
	// the whole usage on stderr.
	fs.SetOutput(io.Discard)
	return &command{name: name, args: args, about: about, fs: fs}
}

func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: pcrs-indexer %s %s\n\n%s\n\nFlags (each also read from %s<FLAG>, e.g. %s):\n", c.name, c.args, c.about, envPrefix, envName("out"))
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(io.Discard)
}

// errHelp is returned by parse when the usage was asked for and printed.
var errHelp = errors.New("help shown")

// parse reads flags anywhere on the line (flags after SOURCE too, "--" ends
// them), then fills the flags not given from the environment. It returns the
// positional arguments. --help prints the usage on stdout.
func (c *command) parse(args []string, stdout io.Writer) ([]string, error) {
	var positional []string
	rest := args
	for {
		if err := c.fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.usage(stdout)
				return nil, errHelp
			}
			return nil, err
		}
		left := c.fs.Args()
		if len(left) == 0 {
			break
		}
		// flag.Parse swallows a "--" and stops: what follows is positional.
		if consumed := len(rest) - len(left); consumed > 0 && rest[consumed-1] == "--" {
			positional = append(positional, left...)
			break
		}
		positional = append(positional, left[0])
		rest = left[1:]
	}
	given := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	c.fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok || given[f.Name] || envErr != nil {
			return
		}
		if err := c.fs.Set(f.Name, v); err != nil {
			envErr = fmt.Errorf("%s: %w", envName(f.Name), err)
		}
	})
	return positional, envErr
}

// usageError reports bad usage in one line with a hint.
func (c *command) usageError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "pcrs-indexer %s: %v\nRun 'pcrs-indexer %s --help' for usage.\n", c.name, err, c.name)
	return exitUsage
}
