package main

// The checks' runner: one line per check, the exchange to blame on failure,
// a JSON summary last; and the small assertion and polling helpers the
// checks share.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	tfe "github.com/hashicorp/go-tfe"
)

type result struct {
	Check string `json:"check"`
	OK    bool   `json:"ok"`
	Why   string `json:"why,omitempty"`
}

type checker struct {
	ctx        context.Context
	cfg        config
	client     *tfe.Client
	httpClient *http.Client
	rec        *recorder
	results    []result
	// A prefix for every name the program creates, so that reruns against
	// the same server and filters by name see only this run's objects.
	prefix string
	fx     fixtures
}

// check runs one check with its own deadline and prints its line.
func (c *checker) check(name string, fn func(ctx context.Context) error) bool {
	mark := c.rec.mark()
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.checkTimeout)
	err := protect(func() error { return fn(ctx) })
	cancel()
	if err == nil {
		fmt.Printf("ok   %s\n", name)
		c.results = append(c.results, result{Check: name, OK: true})
		return true
	}
	why := strings.Join(strings.Fields(err.Error()), " ")
	var missing *missingFixture
	if ex, ok := c.rec.culprit(mark); ok && !errors.As(err, &missing) {
		if d := describe(ex); !strings.Contains(why, d) {
			why += " [" + d + "]"
		}
	}
	fmt.Printf("FAIL %s: %s\n", name, why)
	c.results = append(c.results, result{Check: name, Why: why})
	return false
}

// protect turns a panic in a check (a nil relation dereferenced) into its failure.
func protect(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn()
}

// summary prints the JSON line and tells whether every check passed.
func (c *checker) summary() bool {
	var failed []result
	for _, r := range c.results {
		if !r.OK {
			failed = append(failed, r)
		}
	}
	line, _ := json.Marshal(map[string]any{
		"total":    len(c.results),
		"passed":   len(c.results) - len(failed),
		"failed":   len(failed),
		"failures": failed,
	})
	fmt.Println(string(line))
	return len(failed) == 0
}

// missingFixture is the failure of a check whose subject an earlier check
// failed to make: it names that, not an exchange of its own.
type missingFixture struct{ what string }

func (m *missingFixture) Error() string {
	return "not checked: needs " + m.what + ", which an earlier check did not produce"
}

// checkWithAppliedRun is a check that reads the run an earlier check applied;
// without it, the check reports the missing fixture instead of running.
func (c *checker) checkWithAppliedRun(name string, fn func(ctx context.Context) error) {
	c.check(name, func(ctx context.Context) error {
		if err := need(c.fx.appliedRun != nil, "the applied run"); err != nil {
			return err
		}
		return fn(ctx)
	})
}

func need(ok bool, what string) error {
	if ok {
		return nil
	}
	return &missingFixture{what}
}

// expect gathers every mismatch of a check, so one line says all that is wrong.
type expect struct{ problems []string }

func (e *expect) eq(what string, got, want any) {
	if !reflect.DeepEqual(got, want) {
		e.problems = append(e.problems, fmt.Sprintf("%s = %#v, want %#v", what, got, want))
	}
}

func (e *expect) that(ok bool, format string, args ...any) {
	if !ok {
		e.problems = append(e.problems, fmt.Sprintf(format, args...))
	}
}

func (e *expect) noErr(what string, err error) bool {
	if err != nil {
		e.problems = append(e.problems, fmt.Sprintf("%s: %v", what, err))
		return false
	}
	return true
}

func (e *expect) err() error {
	if len(e.problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(e.problems, "; "))
}

// refused asserts that a request the server must turn down was turned down:
// an error from go-tfe, the status of its answer in want when given.
func (c *checker) refused(e *expect, what string, mark int, err error, want ...int) {
	if err == nil {
		answer := "no request sent"
		if ex, ok := c.rec.culprit(mark); ok {
			answer = describe(ex)
		}
		e.problems = append(e.problems, fmt.Sprintf("%s: accepted, want it refused (%s)", what, answer))
		return
	}
	if len(want) == 0 {
		return
	}
	ex, ok := c.rec.culprit(mark)
	for _, status := range want {
		if ok && ex.Status == status {
			return
		}
	}
	got := "no answer"
	if ok {
		got = describe(ex)
	}
	e.problems = append(e.problems, fmt.Sprintf("%s: refused with %v, want status %v (%s)", what, err, want, got))
}

var finalRunStatuses = map[tfe.RunStatus]bool{
	tfe.RunApplied: true, tfe.RunPlannedAndFinished: true, tfe.RunPlannedAndSaved: true, tfe.RunDiscarded: true,
	tfe.RunErrored: true, tfe.RunCanceled: true, "force_canceled": true,
}

// waitRun polls the run until its status is one of want; reaching another
// final status, or the deadline, is an error that lists the statuses seen.
func (c *checker) waitRun(ctx context.Context, id string, want ...tfe.RunStatus) (*tfe.Run, error) {
	var seen []string
	for {
		run, err := c.client.Runs.Read(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("reading run %s (statuses seen: %v): %w", id, seen, err)
		}
		if len(seen) == 0 || seen[len(seen)-1] != string(run.Status) {
			seen = append(seen, string(run.Status))
		}
		for _, status := range want {
			if run.Status == status {
				return run, nil
			}
		}
		if finalRunStatuses[run.Status] {
			return run, fmt.Errorf("run %s ended %s, want %v (statuses seen: %v)", id, run.Status, want, seen)
		}
		select {
		case <-ctx.Done():
			return run, fmt.Errorf("run %s still %s, want %v (statuses seen: %v): %w", id, run.Status, want, seen, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// eventually polls fn until it returns nil or the context ends, for what
// TFE does asynchronously (a configuration version processing its upload).
func eventually(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func ids[T any](items []*T, id func(*T) string) []string {
	out := make([]string, 0, len(items))
	for _, item := range items {
		out = append(out, id(item))
	}
	return out
}

func contains(list []string, want string) bool {
	for _, item := range list {
		if item == want {
			return true
		}
	}
	return false
}

// rel shows a relationship as failure messages need it: its id, and the
// status or name when the resource was included.
func rel(v any) string {
	switch r := v.(type) {
	case *tfe.Workspace:
		if r != nil {
			return fmt.Sprintf("%s (name %q)", r.ID, r.Name)
		}
	case *tfe.Run:
		if r != nil {
			return fmt.Sprintf("%s (status %q)", r.ID, r.Status)
		}
	case *tfe.ConfigurationVersion:
		if r != nil {
			return fmt.Sprintf("%s (status %q)", r.ID, r.Status)
		}
	case *tfe.Plan:
		if r != nil {
			return fmt.Sprintf("%s (status %q)", r.ID, r.Status)
		}
	case *tfe.Apply:
		if r != nil {
			return fmt.Sprintf("%s (status %q)", r.ID, r.Status)
		}
	case *tfe.AgentPool:
		if r != nil {
			return r.ID
		}
	case *tfe.Organization:
		if r != nil {
			return r.Name
		}
	default:
		return fmt.Sprintf("%v", v)
	}
	return "none"
}
