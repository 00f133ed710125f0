package main

// The kinds of run TFE's clients create, told apart by what their plans
// touch and what reaches the state: plan-only, speculative, refresh-only,
// targeted, with replacements; then the workspace's run list and its filters.

import (
	"context"
	"encoding/json"
	"fmt"

	tfe "github.com/hashicorp/go-tfe"
)

// runTo creates a run, waits for status and reads its plan.
func (c *checker) runTo(ctx context.Context, options tfe.RunCreateOptions, status tfe.RunStatus) (*tfe.Run, *tfe.Plan, error) {
	created, err := c.client.Runs.Create(ctx, options)
	if err != nil {
		return nil, nil, err
	}
	run, err := c.waitRun(ctx, created.ID, status)
	if err != nil {
		return created, nil, err
	}
	if run.Plan == nil {
		return run, nil, fmt.Errorf("run %s has no plan relationship", run.ID)
	}
	plan, err := c.client.Plans.Read(ctx, run.Plan.ID)
	return run, plan, err
}

// currentState reads and downloads the workspace's current state.
func (c *checker) currentState(ctx context.Context, wsID string) (*tfe.StateVersion, stateJSON, error) {
	var state stateJSON
	sv, err := c.client.StateVersions.ReadCurrent(ctx, wsID)
	if err != nil {
		return nil, state, err
	}
	data, err := c.client.StateVersions.Download(ctx, sv.DownloadURL)
	if err != nil {
		return sv, state, err
	}
	return sv, state, json.Unmarshal(data, &state)
}

// stateUnchanged asserts that a run wrote no state version.
func (c *checker) stateUnchanged(ctx context.Context, e *expect) {
	sv, err := c.client.StateVersions.ReadCurrent(ctx, c.fx.runsWS.ID)
	if e.noErr("read current state version", err) {
		e.eq("current state version (unchanged)", sv.ID, c.fx.appliedState.ID)
	}
}

func (c *checker) checkRunVariants() {
	ready := func() error {
		return need(c.fx.appliedState != nil && c.fx.cvThree != nil, "the applied run's state and a second configuration version")
	}
	c.check("runs: plan-only", func(ctx context.Context) error {
		if err := ready(); err != nil {
			return err
		}
		run, plan, err := c.runTo(ctx, tfe.RunCreateOptions{Workspace: c.fx.runsWS, ConfigurationVersion: c.fx.cvThree, PlanOnly: tfe.Bool(true)}, tfe.RunPlannedAndFinished)
		if err != nil {
			return err
		}
		c.fx.runIDs["plan_only"] = run.ID
		var e expect
		e.eq("plan-only", run.PlanOnly, true)
		e.eq("resource-additions (b and c)", plan.ResourceAdditions, 2)
		c.stateUnchanged(ctx, &e)
		return e.err()
	})
	c.check("runs: speculative (from a speculative configuration version)", func(ctx context.Context) error {
		if err := ready(); err != nil {
			return err
		}
		if err := need(c.fx.cvSpeculative != nil, "a speculative configuration version"); err != nil {
			return err
		}
		run, plan, err := c.runTo(ctx, tfe.RunCreateOptions{Workspace: c.fx.runsWS, ConfigurationVersion: c.fx.cvSpeculative}, tfe.RunPlannedAndFinished)
		if err != nil {
			return err
		}
		c.fx.runIDs["speculative"] = run.ID
		var e expect
		e.eq("plan-only", run.PlanOnly, true)
		e.eq("resource-additions (b and c)", plan.ResourceAdditions, 2)
		c.stateUnchanged(ctx, &e)
		return e.err()
	})
	c.check("runs: refresh-only", func(ctx context.Context) error {
		if err := ready(); err != nil {
			return err
		}
		// The configuration adds b and c, which a refresh-only plan ignores.
		run, plan, err := c.runTo(ctx, tfe.RunCreateOptions{Workspace: c.fx.runsWS, ConfigurationVersion: c.fx.cvThree, RefreshOnly: tfe.Bool(true)}, tfe.RunPlannedAndFinished)
		if err != nil {
			return err
		}
		c.fx.runIDs["refresh_only"] = run.ID
		var e expect
		e.eq("refresh-only", run.RefreshOnly, true)
		e.eq("has-changes", plan.HasChanges, false)
		e.eq("resource-additions", plan.ResourceAdditions, 0)
		c.stateUnchanged(ctx, &e)
		return e.err()
	})
	c.check("runs: target", func(ctx context.Context) error {
		if err := ready(); err != nil {
			return err
		}
		targets := []string{"terraform_data.b"}
		run, plan, err := c.runTo(ctx, tfe.RunCreateOptions{Workspace: c.fx.runsWS, ConfigurationVersion: c.fx.cvThree, TargetAddrs: targets, AutoApply: tfe.Bool(true)}, tfe.RunApplied)
		if err != nil {
			return err
		}
		c.fx.runIDs["target"] = run.ID
		var e expect
		e.eq("target-addrs", run.TargetAddrs, targets)
		e.eq("auto-apply", run.AutoApply, true)
		e.eq("resource-additions (b only)", plan.ResourceAdditions, 1)
		_, state, err := c.currentState(ctx, c.fx.runsWS.ID)
		if e.noErr("the state after the run", err) {
			e.that(state.resourceID("terraform_data", "b") != "", "terraform_data.b, the target, is not in the state")
			e.that(state.resourceID("terraform_data", "c") == "", "terraform_data.c, not targeted, is in the state")
		}
		return e.err()
	})
	c.check("runs: replace", func(ctx context.Context) error {
		if err := ready(); err != nil {
			return err
		}
		if err := need(c.fx.runIDs["target"] != "", "the targeted run"); err != nil {
			return err
		}
		replace := []string{"terraform_data.a"}
		run, plan, err := c.runTo(ctx, tfe.RunCreateOptions{Workspace: c.fx.runsWS, ConfigurationVersion: c.fx.cvThree, ReplaceAddrs: replace, AutoApply: tfe.Bool(true)}, tfe.RunApplied)
		if err != nil {
			return err
		}
		c.fx.runIDs["replace"] = run.ID
		var e expect
		e.eq("replace-addrs", run.ReplaceAddrs, replace)
		// a is replaced (one add, one destroy) and c, left out so far, added.
		e.eq("resource-additions", plan.ResourceAdditions, 2)
		e.eq("resource-destructions", plan.ResourceDestructions, 1)
		_, state, err := c.currentState(ctx, c.fx.runsWS.ID)
		if e.noErr("the state after the run", err) {
			id := state.resourceID("terraform_data", "a")
			e.that(id != "" && id != c.fx.firstAID, "terraform_data.a has id %q, want a new one (was %q)", id, c.fx.firstAID)
			e.that(state.resourceID("terraform_data", "c") != "", "terraform_data.c is not in the state")
		}
		return e.err()
	})
}

func (c *checker) runsListed(ctx context.Context, options *tfe.RunListOptions) ([]string, error) {
	list, err := c.client.Runs.List(ctx, c.fx.runsWS.ID, options)
	if err != nil {
		return nil, err
	}
	return ids(list.Items, func(r *tfe.Run) string { return r.ID }), nil
}

func (c *checker) runsOf(kinds ...string) []string {
	out := make([]string, 0, len(kinds))
	for _, kind := range kinds {
		out = append(out, c.fx.runIDs[kind])
	}
	return sorted(out)
}

var allRunKinds = []string{"applied", "plan_only", "speculative", "refresh_only", "target", "replace"}

func (c *checker) checkRunLists() {
	ready := func() error {
		for _, kind := range allRunKinds {
			if c.fx.runIDs[kind] == "" {
				return need(false, "the "+kind+" run")
			}
		}
		return nil
	}
	c.check("runs: list, newest first", func(ctx context.Context) error {
		if err := ready(); err != nil {
			return err
		}
		got, err := c.runsListed(ctx, nil)
		if err != nil {
			return err
		}
		var e expect
		e.eq("runs listed", sorted(got), c.runsOf(allRunKinds...))
		e.that(len(got) > 0 && got[0] == c.fx.runIDs["replace"], "first run listed is %v, want the newest, %s", got, c.fx.runIDs["replace"])
		return e.err()
	})
	filters := []struct {
		name    string
		options tfe.RunListOptions
		want    []string
	}{
		{"status", tfe.RunListOptions{Status: "applied"}, []string{"applied", "target", "replace"}},
		{"status", tfe.RunListOptions{Status: "planned_and_finished"}, []string{"plan_only", "speculative", "refresh_only"}},
		{"status", tfe.RunListOptions{Status: "applied,planned_and_finished"}, allRunKinds},
		{"operation", tfe.RunListOptions{Operation: string(tfe.RunOperationPlanOnly)}, []string{"plan_only", "speculative"}},
		{"operation", tfe.RunListOptions{Operation: string(tfe.RunOperationRefreshOnly)}, []string{"refresh_only"}},
		{"operation", tfe.RunListOptions{Operation: string(tfe.RunOperationPlanApply)}, []string{"applied", "target", "replace"}},
		{"source", tfe.RunListOptions{Source: string(tfe.RunSourceAPI)}, allRunKinds},
		{"source", tfe.RunListOptions{Source: string(tfe.RunSourceUI)}, nil},
	}
	for _, by := range []string{"status", "operation", "source"} {
		c.check("runs: list filtered by "+by, func(ctx context.Context) error {
			if err := ready(); err != nil {
				return err
			}
			var e expect
			for _, f := range filters {
				if f.name != by {
					continue
				}
				options := f.options
				got, err := c.runsListed(ctx, &options)
				if e.noErr(fmt.Sprintf("filter %+v", options), err) {
					e.eq(fmt.Sprintf("runs with %s=%s%s%s", by, options.Status, options.Operation, options.Source), sorted(got), c.runsOf(f.want...))
				}
			}
			return e.err()
		})
	}
	c.check("runs: list with include=workspace", func(ctx context.Context) error {
		if err := ready(); err != nil {
			return err
		}
		list, err := c.client.Runs.List(ctx, c.fx.runsWS.ID, &tfe.RunListOptions{Include: []tfe.RunIncludeOpt{tfe.RunWorkspace}})
		if err != nil {
			return err
		}
		var e expect
		for _, run := range list.Items {
			e.that(nameOf(run.Workspace) == c.fx.runsWS.Name, "run %s: included workspace has name %q, want %q", run.ID, nameOf(run.Workspace), c.fx.runsWS.Name)
		}
		return e.err()
	})
	c.check("runs: pagination", func(ctx context.Context) error {
		if err := ready(); err != nil {
			return err
		}
		return c.checkPages(ctx, c.runsOf(allRunKinds...), "/runs", func(ctx context.Context, page int) ([]string, *tfe.Pagination, error) {
			list, err := c.client.Runs.List(ctx, c.fx.runsWS.ID, &tfe.RunListOptions{ListOptions: tfe.ListOptions{PageNumber: page, PageSize: 2}})
			if err != nil {
				return nil, nil, err
			}
			return ids(list.Items, func(r *tfe.Run) string { return r.ID }), list.Pagination, nil
		})
	})
}
