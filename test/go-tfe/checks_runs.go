package main

// One run planned, confirmed and applied by a real agent: the run, its plan
// and apply, their logs (go-tfe's LogReader, and the STX/ETX framing and
// pre-signed URL under it), the JSON plan, include= and run events.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	tfe "github.com/hashicorp/go-tfe"
)

func (c *checker) checkAppliedRun() {
	var run *tfe.Run
	c.check("runs: create", func(ctx context.Context) error {
		if err := need(c.fx.cvOne != nil, "an uploaded configuration version"); err != nil {
			return err
		}
		var err error
		run, err = c.client.Runs.Create(ctx, tfe.RunCreateOptions{
			Workspace:            c.fx.runsWS,
			ConfigurationVersion: c.fx.cvOne,
			Message:              tfe.String("go-tfe-check: plan and apply"),
		})
		if err != nil {
			return err
		}
		var e expect
		e.that(strings.HasPrefix(run.ID, "run-"), "id %q does not start with run-", run.ID)
		e.eq("message", run.Message, "go-tfe-check: plan and apply")
		e.eq("auto-apply (the workspace's)", run.AutoApply, false)
		e.eq("plan-only", run.PlanOnly, false)
		e.eq("is-destroy", run.IsDestroy, false)
		e.eq("source", run.Source, tfe.RunSourceAPI)
		e.that(!finalRunStatuses[run.Status] && run.Status != "", "status %q of a new run", run.Status)
		e.that(!run.CreatedAt.IsZero(), "created-at is missing")
		e.that(run.Workspace != nil && run.Workspace.ID == c.fx.runsWS.ID, "workspace relationship = %s", rel(run.Workspace))
		e.that(run.ConfigurationVersion != nil && run.ConfigurationVersion.ID == c.fx.cvOne.ID, "configuration-version relationship = %s", rel(run.ConfigurationVersion))
		e.that(run.Plan != nil && run.Plan.ID != "", "plan relationship is missing")
		return e.err()
	})
	c.check("runs: plans and waits for confirmation", func(ctx context.Context) error {
		if err := need(run != nil, "the created run"); err != nil {
			return err
		}
		planned, err := c.waitRun(ctx, run.ID, tfe.RunPlanned)
		if err != nil {
			return err
		}
		run = planned
		var e expect
		e.eq("has-changes", planned.HasChanges, true)
		e.that(planned.Actions != nil && planned.Actions.IsConfirmable && planned.Actions.IsDiscardable, "actions = %+v, want is-confirmable and is-discardable (the CLI asks for approval only when confirmable)", planned.Actions)
		e.that(planned.StatusTimestamps != nil && !planned.StatusTimestamps.PlannedAt.IsZero(), "status-timestamps.planned-at is missing")
		return e.err()
	})
	c.check("runs: read", func(ctx context.Context) error {
		if err := need(run != nil, "the created run"); err != nil {
			return err
		}
		got, err := c.client.Runs.Read(ctx, run.ID)
		if err != nil {
			return err
		}
		var e expect
		e.eq("id", got.ID, run.ID)
		e.eq("message", got.Message, run.Message)
		e.eq("status", got.Status, tfe.RunPlanned)
		return e.err()
	})
	c.check("runs: apply", func(ctx context.Context) error {
		if err := need(run != nil && run.Status == tfe.RunPlanned, "a planned run"); err != nil {
			return err
		}
		if err := c.client.Runs.Apply(ctx, run.ID, tfe.RunApplyOptions{Comment: tfe.String("go-tfe-check approves")}); err != nil {
			return err
		}
		applied, err := c.waitRun(ctx, run.ID, tfe.RunApplied)
		if err != nil {
			return err
		}
		c.fx.appliedRun = applied
		c.fx.runIDs["applied"] = applied.ID
		var e expect
		e.that(applied.Actions != nil && !applied.Actions.IsConfirmable, "actions = %+v, want not confirmable once applied", applied.Actions)
		if ts := applied.StatusTimestamps; ts != nil {
			e.that(!ts.PlanQueuedAt.IsZero() && !ts.PlannedAt.IsZero() && !ts.ApplyingAt.IsZero() && !ts.AppliedAt.IsZero(), "status-timestamps = %+v, want plan-queued-at, planned-at, applying-at and applied-at", *ts)
		} else {
			e.that(false, "status-timestamps are missing")
		}
		e.that(applied.Apply != nil && applied.Apply.ID != "", "apply relationship is missing")
		return e.err()
	})
	c.checkWithAppliedRun("runs: apply of an applied run is refused (409)", func(ctx context.Context) error {
		var e expect
		mark := c.rec.mark()
		c.refused(&e, "apply again", mark, c.client.Runs.Apply(ctx, c.fx.appliedRun.ID, tfe.RunApplyOptions{}), 409)
		return e.err()
	})
}

// readLog reads a phase's log the way go-tfe's users do, to the end.
func readLog(reader io.Reader, err error) (string, error) {
	if err != nil {
		return "", err
	}
	data, err := io.ReadAll(reader)
	return string(data), err
}

// checkFraming fetches a finished phase's log URL as go-tfe does (no
// token), expects TFE's STX … ETX framing around want, and a tampered URL
// to be refused.
func (c *checker) checkFraming(e *expect, what, logURL, want string) {
	resp, err := c.raw("GET", logURL, "", nil)
	if !e.noErr(what+" log URL without a token", err) {
		return
	}
	body := resp.Body
	e.that(resp.Status == 200, "%s log URL without a token answered %d", what, resp.Status)
	e.that(len(body) >= 2 && body[0] == 0x02 && body[len(body)-1] == 0x03, "%s log is not framed by STX (0x02) and ETX (0x03): starts %q, ends %q", what, head(body), tail(body))
	e.that(bytes.Contains(body, []byte(want)), "%s log lacks %q", what, want)
	bad, err := tampered(logURL)
	if !e.noErr("tampering with the URL", err) {
		return
	}
	resp, err = c.raw("GET", bad, "", nil)
	if e.noErr(what+" tampered log URL", err) {
		e.that(resp.Status >= 400 && resp.Status < 500, "%s log at the tampered %s answered %d, want 4xx", what, bad, resp.Status)
	}
}

func head(b []byte) string {
	if len(b) > 16 {
		b = b[:16]
	}
	return string(b)
}

func tail(b []byte) string {
	if len(b) > 16 {
		b = b[len(b)-16:]
	}
	return string(b)
}

func (c *checker) checkPlanAndApply() {
	c.checkWithAppliedRun("plans: read", func(ctx context.Context) error {
		plan, err := c.client.Plans.Read(ctx, c.fx.appliedRun.Plan.ID)
		if err != nil {
			return err
		}
		var e expect
		e.eq("status", plan.Status, tfe.PlanFinished)
		e.eq("has-changes", plan.HasChanges, true)
		e.eq("resource-additions", plan.ResourceAdditions, 1)
		e.eq("resource-changes", plan.ResourceChanges, 0)
		e.eq("resource-destructions", plan.ResourceDestructions, 0)
		e.that(strings.HasPrefix(plan.LogReadURL, "http"), "log-read-url %q is not an absolute URL", plan.LogReadURL)
		return e.err()
	})
	c.checkWithAppliedRun("plans: logs (LogReader)", func(ctx context.Context) error {
		text, err := readLog(c.client.Plans.Logs(ctx, c.fx.appliedRun.Plan.ID))
		if err != nil {
			return err
		}
		var e expect
		e.that(strings.Contains(text, "Plan: 1 to add, 0 to change, 0 to destroy."), "plan log lacks the plan's summary: %q", tail([]byte(text)))
		e.that(strings.Contains(text, "terraform_data.a"), "plan log does not name terraform_data.a")
		e.that(!strings.ContainsAny(text, "\x02\x03"), "STX or ETX left inside the text LogReader returns")
		return e.err()
	})
	c.checkWithAppliedRun("plans: log URL is pre-signed and framed with STX/ETX", func(ctx context.Context) error {
		plan, err := c.client.Plans.Read(ctx, c.fx.appliedRun.Plan.ID)
		if err != nil {
			return err
		}
		var e expect
		c.checkFraming(&e, "plan", plan.LogReadURL, "Plan: 1 to add")
		return e.err()
	})
	c.checkWithAppliedRun("plans: JSON output", func(ctx context.Context) error {
		data, err := c.client.Plans.ReadJSONOutput(ctx, c.fx.appliedRun.Plan.ID)
		if err != nil {
			return err
		}
		var plan struct {
			FormatVersion   string `json:"format_version"`
			ResourceChanges []struct {
				Address string `json:"address"`
				Change  struct {
					Actions []string `json:"actions"`
				} `json:"change"`
			} `json:"resource_changes"`
		}
		if err := json.Unmarshal(data, &plan); err != nil {
			return fmt.Errorf("not JSON (%d bytes starting %q): %w", len(data), head(data), err)
		}
		var e expect
		e.that(plan.FormatVersion != "", "format_version is missing")
		found := false
		for _, change := range plan.ResourceChanges {
			if change.Address == "terraform_data.a" {
				found = true
				e.eq("actions of terraform_data.a", change.Change.Actions, []string{"create"})
			}
		}
		e.that(found, "resource_changes lacks terraform_data.a")
		return e.err()
	})
	c.checkWithAppliedRun("applies: read", func(ctx context.Context) error {
		apply, err := c.client.Applies.Read(ctx, c.fx.appliedRun.Apply.ID)
		if err != nil {
			return err
		}
		var e expect
		e.eq("status", apply.Status, tfe.ApplyFinished)
		e.eq("resource-additions", apply.ResourceAdditions, 1)
		e.eq("resource-destructions", apply.ResourceDestructions, 0)
		e.that(strings.HasPrefix(apply.LogReadURL, "http"), "log-read-url %q is not an absolute URL", apply.LogReadURL)
		return e.err()
	})
	c.checkWithAppliedRun("applies: logs (LogReader, pre-signed, STX/ETX)", func(ctx context.Context) error {
		want := "Apply complete! Resources: 1 added, 0 changed, 0 destroyed."
		text, err := readLog(c.client.Applies.Logs(ctx, c.fx.appliedRun.Apply.ID))
		if err != nil {
			return err
		}
		var e expect
		e.that(strings.Contains(text, want), "apply log lacks %q: %q", want, tail([]byte(text)))
		apply, err := c.client.Applies.Read(ctx, c.fx.appliedRun.Apply.ID)
		if e.noErr("read", err) {
			c.checkFraming(&e, "apply", apply.LogReadURL, want)
		}
		return e.err()
	})
	c.checkWithAppliedRun("runs: include plan, apply, workspace and configuration version", func(ctx context.Context) error {
		run, err := c.client.Runs.ReadWithOptions(ctx, c.fx.appliedRun.ID, &tfe.RunReadOptions{Include: []tfe.RunIncludeOpt{tfe.RunPlan, tfe.RunApply, tfe.RunWorkspace, tfe.RunConfigVer}})
		if err != nil {
			return err
		}
		// Without included resources, go-tfe fills in only the ids.
		var e expect
		e.that(run.Plan != nil && run.Plan.Status == tfe.PlanFinished, "included plan = %s, want status finished", rel(run.Plan))
		e.that(run.Apply != nil && run.Apply.Status == tfe.ApplyFinished, "included apply = %s, want status finished", rel(run.Apply))
		e.that(run.Workspace != nil && run.Workspace.Name == c.fx.runsWS.Name, "included workspace has name %q, want %q", nameOf(run.Workspace), c.fx.runsWS.Name)
		e.that(run.ConfigurationVersion != nil && run.ConfigurationVersion.Status == tfe.ConfigurationUploaded, "included configuration version = %s, want status uploaded", rel(run.ConfigurationVersion))
		return e.err()
	})
	c.checkWithAppliedRun("run events: list and read", func(ctx context.Context) error {
		return c.checkRunEvents(ctx, c.fx.appliedRun.ID, "applied")
	})
}

// checkRunEvents lists a run's events: each has an action and a time, in
// order, the run's outcome among them, and each reads back by id.
func (c *checker) checkRunEvents(ctx context.Context, runID, outcome string) error {
	list, err := c.client.RunEvents.List(ctx, runID, nil)
	if err != nil {
		return err
	}
	var e expect
	if len(list.Items) == 0 {
		return errors.New("no run events for a finished run")
	}
	var actions []string
	for i, event := range list.Items {
		actions = append(actions, event.Action)
		e.that(event.ID != "" && event.Action != "" && !event.CreatedAt.IsZero(), "event %d = %+v, want id, action and created-at", i, *event)
		if i > 0 {
			e.that(!event.CreatedAt.Before(list.Items[i-1].CreatedAt), "events out of order: %s before %s", list.Items[i-1].CreatedAt, event.CreatedAt)
		}
	}
	e.that(contains(actions, outcome), "actions %v lack %q", actions, outcome)
	first := list.Items[0]
	got, err := c.client.RunEvents.Read(ctx, first.ID)
	if e.noErr("read "+first.ID, err) {
		e.eq("action read back", got.Action, first.Action)
		e.that(got.CreatedAt.Equal(first.CreatedAt), "created-at read back %s, listed %s", got.CreatedAt, first.CreatedAt)
	}
	return e.err()
}

func nameOf(ws *tfe.Workspace) string {
	if ws == nil {
		return ""
	}
	return ws.Name
}
