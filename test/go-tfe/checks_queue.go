package main

// Runs that end without applying: one waiting behind a planned run and
// canceled, the planned one discarded, one canceled while it applies, and
// one force-canceled while its cancel is under way; and a run whose
// configuration is the workspace's latest.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	tfe "github.com/hashicorp/go-tfe"
)

func (c *checker) checkRunQueue() {
	var cv *tfe.ConfigurationVersion
	var first, second *tfe.Run
	c.check("runs: a second workspace's run plans", func(ctx context.Context) error {
		if err := need(c.fx.queueWS != nil, "the queue workspace"); err != nil {
			return err
		}
		var err error
		if cv, err = c.uploaded(ctx, c.fx.queueWS.ID, configOne, false); err != nil {
			return err
		}
		run, err := c.client.Runs.Create(ctx, tfe.RunCreateOptions{Workspace: c.fx.queueWS, ConfigurationVersion: cv})
		if err != nil {
			return err
		}
		first, err = c.waitRun(ctx, run.ID, tfe.RunPlanned)
		return err
	})
	c.check("workspaces: include current_run", func(ctx context.Context) error {
		if err := need(first != nil && first.Status == tfe.RunPlanned, "a planned run"); err != nil {
			return err
		}
		ws, err := c.client.Workspaces.ReadByIDWithOptions(ctx, c.fx.queueWS.ID, &tfe.WorkspaceReadOptions{Include: []tfe.WSIncludeOpt{tfe.WSCurrentRun}})
		if err != nil {
			return err
		}
		if ws.CurrentRun == nil || ws.CurrentRun.ID != first.ID || ws.CurrentRun.Status != tfe.RunPlanned {
			return fmt.Errorf("included current run = %s, want %s with status planned", rel(ws.CurrentRun), first.ID)
		}
		return nil
	})
	c.check("runs: a run behind a planned one is pending", func(ctx context.Context) error {
		if err := need(first != nil && first.Status == tfe.RunPlanned, "a planned run"); err != nil {
			return err
		}
		run, err := c.client.Runs.Create(ctx, tfe.RunCreateOptions{Workspace: c.fx.queueWS, ConfigurationVersion: cv})
		if err != nil {
			return err
		}
		second, err = c.client.Runs.Read(ctx, run.ID)
		if err != nil {
			return err
		}
		var e expect
		e.eq("status", second.Status, tfe.RunPending)
		e.that(second.Actions != nil && second.Actions.IsCancelable && second.Actions.IsDiscardable, "actions = %+v, want cancelable and discardable", second.Actions)
		return e.err()
	})
	c.check("runs: cancel a pending run", func(ctx context.Context) error {
		if err := need(second != nil && second.Status == tfe.RunPending, "a pending run"); err != nil {
			return err
		}
		if err := c.client.Runs.Cancel(ctx, second.ID, tfe.RunCancelOptions{Comment: tfe.String("go-tfe-check cancels")}); err != nil {
			return err
		}
		if _, err := c.waitRun(ctx, second.ID, tfe.RunCanceled); err != nil {
			return err
		}
		return c.checkRunEvents(ctx, second.ID, "canceled")
	})
	c.check("runs: discard", func(ctx context.Context) error {
		if err := need(first != nil && first.Status == tfe.RunPlanned, "a planned run"); err != nil {
			return err
		}
		if err := c.client.Runs.Discard(ctx, first.ID, tfe.RunDiscardOptions{Comment: tfe.String("go-tfe-check discards")}); err != nil {
			return err
		}
		discarded, err := c.waitRun(ctx, first.ID, tfe.RunDiscarded)
		if err != nil {
			return err
		}
		var e expect
		e.that(discarded.Actions != nil && !discarded.Actions.IsConfirmable && !discarded.Actions.IsDiscardable, "actions = %+v, want neither confirmable nor discardable", discarded.Actions)
		mark := c.rec.mark()
		c.refused(&e, "apply of a discarded run", mark, c.client.Runs.Apply(ctx, first.ID, tfe.RunApplyOptions{}), 409)
		if err := c.checkRunEvents(ctx, first.ID, "discarded"); err != nil {
			e.that(false, "run events: %v", err)
		}
		_, err = c.client.StateVersions.ReadCurrent(ctx, c.fx.queueWS.ID)
		e.that(errors.Is(err, tfe.ErrResourceNotFound), "current state version of a workspace whose only runs were discarded: %s, want ErrResourceNotFound", errString(err))
		return e.err()
	})
	c.check("runs: create without a configuration version uses the workspace's latest", func(ctx context.Context) error {
		if err := need(cv != nil, "the queue workspace's configuration version"); err != nil {
			return err
		}
		run, err := c.client.Runs.Create(ctx, tfe.RunCreateOptions{Workspace: c.fx.queueWS, PlanOnly: tfe.Bool(true)})
		if err != nil {
			return err
		}
		var e expect
		e.that(run.ConfigurationVersion != nil && run.ConfigurationVersion.ID == cv.ID, "configuration-version relationship = %s, want %s", rel(run.ConfigurationVersion), cv.ID)
		_, err = c.waitRun(ctx, run.ID, tfe.RunPlannedAndFinished)
		e.noErr("the plan", err)
		return e.err()
	})
}

// startApplying creates an auto-applied run of files in a new workspace
// and waits until its apply runs and its log shows marker (the provisioner
// has started).
func (c *checker) startApplying(ctx context.Context, suffix string, files map[string]string, marker string) (*tfe.Run, error) {
	ws, err := c.newWorkspace(ctx, suffix, true)
	if err != nil {
		return nil, err
	}
	cv, err := c.uploaded(ctx, ws.ID, files, false)
	if err != nil {
		return nil, err
	}
	run, err := c.client.Runs.Create(ctx, tfe.RunCreateOptions{Workspace: ws, ConfigurationVersion: cv})
	if err != nil {
		return nil, err
	}
	run, err = c.waitRun(ctx, run.ID, tfe.RunApplying)
	if err != nil {
		return run, err
	}
	if run.Apply == nil {
		return run, errors.New("an applying run without an apply relationship")
	}
	return run, c.waitForLog(ctx, run.Apply.ID, marker)
}

// waitForLog reads an apply's log with go-tfe's LogReader until marker shows.
func (c *checker) waitForLog(ctx context.Context, applyID, marker string) error {
	reader, err := c.client.Applies.Logs(ctx, applyID)
	if err != nil {
		return err
	}
	var text strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(text.String(), marker) {
		n, err := reader.Read(buf)
		text.Write(buf[:n])
		if err != nil {
			return fmt.Errorf("the apply log ended (%v) without %q: %q", err, marker, tail([]byte(text.String())))
		}
	}
	return nil
}

func (c *checker) checkCancels() {
	c.check("runs: cancel while applying", func(ctx context.Context) error {
		run, err := c.startApplying(ctx, "cancel", slowApply, "go-tfe-slow-apply-started")
		if err != nil {
			return err
		}
		if err := c.client.Runs.Cancel(ctx, run.ID, tfe.RunCancelOptions{}); err != nil {
			return err
		}
		canceled, err := c.waitRun(ctx, run.ID, tfe.RunCanceled)
		if err != nil {
			return err
		}
		var e expect
		e.that(canceled.StatusTimestamps != nil && !canceled.StatusTimestamps.CanceledAt.IsZero(), "status-timestamps.canceled-at is missing")
		apply, err := c.client.Applies.Read(ctx, run.Apply.ID)
		if e.noErr("read the apply", err) {
			e.eq("apply status", apply.Status, tfe.ApplyCanceled)
		}
		return e.err()
	})
	c.check("runs: force-cancel while a cancel is under way", func(ctx context.Context) error {
		// TFE's users force-cancel a run whose cancel has not ended it. The
		// engine stops within moments of a cancel, so the force-cancel
		// follows the cancel at once; should the engine still win, the run
		// ends canceled, which says nothing of force-cancel, and a new run
		// tries again.
		var tries []string
		for attempt := 1; attempt <= 3; attempt++ {
			run, err := c.startApplying(ctx, fmt.Sprintf("force%d", attempt), slowApply, "go-tfe-slow-apply-started")
			if err != nil {
				return err
			}
			if err := c.client.Runs.Cancel(ctx, run.ID, tfe.RunCancelOptions{}); err != nil {
				return fmt.Errorf("the cancel before the force-cancel: %w", err)
			}
			forceErr := c.client.Runs.ForceCancel(ctx, run.ID, tfe.RunForceCancelOptions{Comment: tfe.String("go-tfe-check force-cancels")})
			if forceErr != nil {
				after, err := c.client.Runs.Read(ctx, run.ID)
				if err == nil && after.Status == tfe.RunCanceled {
					tries = append(tries, fmt.Sprintf("%s: canceled before the force-cancel (%v)", run.ID, forceErr))
					continue
				}
				return forceErr
			}
			done, err := c.waitRun(ctx, run.ID, "force_canceled")
			if err != nil {
				return err
			}
			if done.StatusTimestamps == nil || done.StatusTimestamps.ForceCanceledAt.IsZero() {
				return errors.New("status-timestamps.force-canceled-at is missing")
			}
			return nil
		}
		return fmt.Errorf("every try ended canceled, not force_canceled: %s", strings.Join(tries, "; "))
	})
}
