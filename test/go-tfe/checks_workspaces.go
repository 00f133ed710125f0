package main

// Workspaces: create, read and update by name and by id, search and pages,
// locks, tags, execution mode, delete.

import (
	"context"
	"errors"
	"sort"
	"strings"

	tfe "github.com/hashicorp/go-tfe"
)

func (c *checker) tagNames(ctx context.Context, id string) ([]string, error) {
	list, err := c.client.Workspaces.ListTags(ctx, id, nil)
	if err != nil {
		return nil, err
	}
	names := ids(list.Items, func(t *tfe.Tag) string { return t.Name })
	sort.Strings(names)
	return names, nil
}

func sorted(list []string) []string {
	out := append([]string{}, list...)
	sort.Strings(out)
	return out
}

func (c *checker) checkWorkspaces() {
	name := c.prefix + "-ws"
	tag := c.prefix + "-tag"
	c.check("workspaces: create", func(ctx context.Context) error {
		ws, err := c.client.Workspaces.Create(ctx, c.cfg.org, tfe.WorkspaceCreateOptions{
			Name:             tfe.String(name),
			Description:      tfe.String("made by go-tfe-check"),
			AutoApply:        tfe.Bool(false),
			ExecutionMode:    tfe.String("agent"),
			AgentPoolID:      tfe.String(c.cfg.poolID),
			TerraformVersion: tfe.String("1.10.10"),
			Tags:             []*tfe.Tag{{Name: tag}, {Name: "go-tfe"}},
		})
		if err != nil {
			return err
		}
		c.fx.workspace = ws
		var e expect
		e.that(strings.HasPrefix(ws.ID, "ws-"), "id %q does not start with ws-", ws.ID)
		e.eq("name", ws.Name, name)
		e.eq("description", ws.Description, "made by go-tfe-check")
		e.eq("auto-apply", ws.AutoApply, false)
		e.eq("execution-mode", ws.ExecutionMode, "agent")
		e.eq("terraform-version", ws.TerraformVersion, "1.10.10")
		e.eq("locked", ws.Locked, false)
		e.eq("tag-names", sorted(ws.TagNames), []string{"go-tfe", tag})
		e.that(ws.AgentPool != nil && ws.AgentPool.ID == c.cfg.poolID, "agent-pool relationship = %s, want %s", rel(ws.AgentPool), c.cfg.poolID)
		e.that(ws.Organization != nil && ws.Organization.Name == c.cfg.org, "organization relationship = %s, want %s", rel(ws.Organization), c.cfg.org)
		e.that(!ws.CreatedAt.IsZero(), "created-at is missing")
		return e.err()
	})
	c.check("workspaces: read by name", func(ctx context.Context) error {
		if err := need(c.fx.workspace != nil, "the created workspace"); err != nil {
			return err
		}
		ws, err := c.client.Workspaces.Read(ctx, c.cfg.org, name)
		if err != nil {
			return err
		}
		var e expect
		e.eq("id", ws.ID, c.fx.workspace.ID)
		e.eq("execution-mode", ws.ExecutionMode, "agent")
		e.that(ws.AgentPool != nil && ws.AgentPool.ID == c.cfg.poolID, "agent-pool relationship = %s, want %s", rel(ws.AgentPool), c.cfg.poolID)
		return e.err()
	})
	c.check("workspaces: read by id", func(ctx context.Context) error {
		if err := need(c.fx.workspace != nil, "the created workspace"); err != nil {
			return err
		}
		ws, err := c.client.Workspaces.ReadByID(ctx, c.fx.workspace.ID)
		if err != nil {
			return err
		}
		var e expect
		e.eq("name", ws.Name, name)
		e.eq("description", ws.Description, "made by go-tfe-check")
		return e.err()
	})
	c.check("workspaces: update by name", func(ctx context.Context) error {
		if err := need(c.fx.workspace != nil, "the created workspace"); err != nil {
			return err
		}
		ws, err := c.client.Workspaces.Update(ctx, c.cfg.org, name, tfe.WorkspaceUpdateOptions{AutoApply: tfe.Bool(true), Description: tfe.String("changed by name")})
		if err != nil {
			return err
		}
		var e expect
		e.eq("auto-apply in the answer", ws.AutoApply, true)
		e.eq("description in the answer", ws.Description, "changed by name")
		again, err := c.client.Workspaces.ReadByID(ctx, c.fx.workspace.ID)
		if e.noErr("read back", err) {
			e.eq("auto-apply read back", again.AutoApply, true)
			e.eq("execution-mode read back (not sent)", again.ExecutionMode, "agent")
		}
		return e.err()
	})
	renamed := name + "-renamed"
	c.check("workspaces: update by id (rename)", func(ctx context.Context) error {
		if err := need(c.fx.workspace != nil, "the created workspace"); err != nil {
			return err
		}
		ws, err := c.client.Workspaces.UpdateByID(ctx, c.fx.workspace.ID, tfe.WorkspaceUpdateOptions{Name: tfe.String(renamed), AutoApply: tfe.Bool(false)})
		if err != nil {
			return err
		}
		c.fx.workspace = ws
		var e expect
		e.eq("name", ws.Name, renamed)
		e.eq("auto-apply", ws.AutoApply, false)
		byName, err := c.client.Workspaces.Read(ctx, c.cfg.org, renamed)
		if e.noErr("read by the new name", err) {
			e.eq("id under the new name", byName.ID, ws.ID)
		}
		_, err = c.client.Workspaces.Read(ctx, c.cfg.org, name)
		e.that(errors.Is(err, tfe.ErrResourceNotFound), "read by the old name: %s, want ErrResourceNotFound", errString(err))
		return e.err()
	})
	c.check("workspaces: list with search", func(ctx context.Context) error {
		if err := need(c.fx.workspace != nil, "the created workspace"); err != nil {
			return err
		}
		list, err := c.client.Workspaces.List(ctx, c.cfg.org, &tfe.WorkspaceListOptions{Search: c.prefix + "-ws"})
		if err != nil {
			return err
		}
		var e expect
		e.eq("workspaces found", ids(list.Items, func(w *tfe.Workspace) string { return w.ID }), []string{c.fx.workspace.ID})
		e.that(list.Pagination != nil && list.TotalCount == 1, "meta.pagination = %+v, want total-count 1", list.Pagination)
		return e.err()
	})
	c.checkWorkspacePages()
}

// checkWorkspacePages lists three workspaces two at a time.
func (c *checker) checkWorkspacePages() {
	search := c.prefix + "-page"
	c.check("workspaces: pagination (meta.pagination and links)", func(ctx context.Context) error {
		var made []string
		for _, suffix := range []string{"1", "2", "3"} {
			ws, err := c.client.Workspaces.Create(ctx, c.cfg.org, tfe.WorkspaceCreateOptions{Name: tfe.String(search + suffix)})
			if err != nil {
				return err
			}
			made = append(made, ws.ID)
			c.fx.pageWorkspaces = append(c.fx.pageWorkspaces, ws)
		}
		return c.checkPages(ctx, made, "/workspaces", func(ctx context.Context, page int) ([]string, *tfe.Pagination, error) {
			list, err := c.client.Workspaces.List(ctx, c.cfg.org, &tfe.WorkspaceListOptions{Search: search, ListOptions: tfe.ListOptions{PageNumber: page, PageSize: 2}})
			if err != nil {
				return nil, nil, err
			}
			return ids(list.Items, func(w *tfe.Workspace) string { return w.ID }), list.Pagination, nil
		})
	})
}

func (c *checker) checkWorkspaceLocks() {
	lock := func(ctx context.Context) error {
		ws, err := c.client.Workspaces.Lock(ctx, c.fx.workspace.ID, tfe.WorkspaceLockOptions{Reason: tfe.String("go-tfe-check")})
		if err != nil {
			return err
		}
		if !ws.Locked {
			return errors.New("the lock answer says locked = false")
		}
		return nil
	}
	c.check("workspaces: lock", func(ctx context.Context) error {
		if err := need(c.fx.workspace != nil, "the created workspace"); err != nil {
			return err
		}
		if err := lock(ctx); err != nil {
			return err
		}
		ws, err := c.client.Workspaces.ReadByID(ctx, c.fx.workspace.ID)
		if err != nil {
			return err
		}
		if !ws.Locked {
			return errors.New("read after lock says locked = false")
		}
		return nil
	})
	c.check("workspaces: locking a locked workspace is 409", func(ctx context.Context) error {
		if err := need(c.fx.workspace != nil, "the created workspace"); err != nil {
			return err
		}
		_, err := c.client.Workspaces.Lock(ctx, c.fx.workspace.ID, tfe.WorkspaceLockOptions{})
		if !errors.Is(err, tfe.ErrWorkspaceLocked) {
			return errors.New("second lock: " + errString(err) + ", want ErrWorkspaceLocked")
		}
		return nil
	})
	c.check("workspaces: unlock", func(ctx context.Context) error {
		if err := need(c.fx.workspace != nil, "the created workspace"); err != nil {
			return err
		}
		ws, err := c.client.Workspaces.Unlock(ctx, c.fx.workspace.ID)
		if err != nil {
			return err
		}
		var e expect
		e.eq("locked in the answer", ws.Locked, false)
		_, err = c.client.Workspaces.Unlock(ctx, c.fx.workspace.ID)
		e.that(errors.Is(err, tfe.ErrWorkspaceNotLocked), "unlocking an unlocked workspace: %s, want ErrWorkspaceNotLocked", errString(err))
		return e.err()
	})
	c.check("workspaces: force-unlock", func(ctx context.Context) error {
		if err := need(c.fx.workspace != nil, "the created workspace"); err != nil {
			return err
		}
		if err := lock(ctx); err != nil {
			return err
		}
		ws, err := c.client.Workspaces.ForceUnlock(ctx, c.fx.workspace.ID)
		if err != nil {
			return err
		}
		var e expect
		e.eq("locked in the answer", ws.Locked, false)
		_, err = c.client.Workspaces.ForceUnlock(ctx, c.fx.workspace.ID)
		e.that(errors.Is(err, tfe.ErrWorkspaceNotLocked), "force-unlocking an unlocked workspace: %s, want ErrWorkspaceNotLocked", errString(err))
		return e.err()
	})
}

func (c *checker) checkWorkspaceTags() {
	tag, extra := c.prefix+"-tag", c.prefix+"-extra"
	c.check("workspaces: tags set at creation", func(ctx context.Context) error {
		if err := need(c.fx.workspace != nil, "the created workspace"); err != nil {
			return err
		}
		names, err := c.tagNames(ctx, c.fx.workspace.ID)
		if err != nil {
			return err
		}
		var e expect
		e.eq("tags listed", names, []string{"go-tfe", tag})
		return e.err()
	})
	c.check("workspaces: add and remove tags", func(ctx context.Context) error {
		if err := need(c.fx.workspace != nil, "the created workspace"); err != nil {
			return err
		}
		id := c.fx.workspace.ID
		if err := c.client.Workspaces.AddTags(ctx, id, tfe.WorkspaceAddTagsOptions{Tags: []*tfe.Tag{{Name: extra}}}); err != nil {
			return err
		}
		var e expect
		names, err := c.tagNames(ctx, id)
		if e.noErr("list after add", err) {
			e.eq("tags after add", names, sorted([]string{"go-tfe", tag, extra}))
		}
		ws, err := c.client.Workspaces.ReadByID(ctx, id)
		if e.noErr("read after add", err) {
			e.eq("tag-names after add", sorted(ws.TagNames), sorted([]string{"go-tfe", tag, extra}))
		}
		err = c.client.Workspaces.RemoveTags(ctx, id, tfe.WorkspaceRemoveTagsOptions{Tags: []*tfe.Tag{{Name: extra}}})
		if e.noErr("remove", err) {
			names, err = c.tagNames(ctx, id)
			if e.noErr("list after remove", err) {
				e.eq("tags after remove", names, []string{"go-tfe", tag})
			}
		}
		return e.err()
	})
	c.check("workspaces: search by tags", func(ctx context.Context) error {
		if err := need(c.fx.workspace != nil, "the created workspace"); err != nil {
			return err
		}
		var e expect
		tagged, err := c.client.Workspaces.List(ctx, c.cfg.org, &tfe.WorkspaceListOptions{Tags: tag})
		if e.noErr("search[tags]", err) {
			e.eq("workspaces tagged "+tag, ids(tagged.Items, func(w *tfe.Workspace) string { return w.ID }), []string{c.fx.workspace.ID})
		}
		rest, err := c.client.Workspaces.List(ctx, c.cfg.org, &tfe.WorkspaceListOptions{Search: c.prefix, ExcludeTags: tag})
		if e.noErr("search[exclude-tags]", err) {
			found := ids(rest.Items, func(w *tfe.Workspace) string { return w.ID })
			e.that(!contains(found, c.fx.workspace.ID), "search[exclude-tags]=%s still lists the tagged workspace", tag)
			e.that(len(found) > 0, "search[exclude-tags]=%s lists none of this run's other workspaces", tag)
		}
		return e.err()
	})
}

func (c *checker) checkExecutionMode() {
	c.check("workspaces: execution mode local", func(ctx context.Context) error {
		if err := need(c.fx.workspace != nil, "the created workspace"); err != nil {
			return err
		}
		ws, err := c.client.Workspaces.UpdateByID(ctx, c.fx.workspace.ID, tfe.WorkspaceUpdateOptions{ExecutionMode: tfe.String("local")})
		if err != nil {
			return err
		}
		var e expect
		e.eq("execution-mode in the answer", ws.ExecutionMode, "local")
		again, err := c.client.Workspaces.ReadByID(ctx, ws.ID)
		if e.noErr("read back", err) {
			e.eq("execution-mode read back", again.ExecutionMode, "local")
		}
		return e.err()
	})
	c.check("workspaces: execution mode agent with a pool", func(ctx context.Context) error {
		if err := need(c.fx.workspace != nil, "the created workspace"); err != nil {
			return err
		}
		ws, err := c.client.Workspaces.UpdateByID(ctx, c.fx.workspace.ID, tfe.WorkspaceUpdateOptions{ExecutionMode: tfe.String("agent"), AgentPoolID: tfe.String(c.cfg.poolID)})
		if err != nil {
			return err
		}
		var e expect
		e.eq("execution-mode", ws.ExecutionMode, "agent")
		e.that(ws.AgentPool != nil && ws.AgentPool.ID == c.cfg.poolID, "agent-pool relationship = %s, want %s", rel(ws.AgentPool), c.cfg.poolID)
		return e.err()
	})
	c.check("workspaces: execution mode agent without any pool is refused (422)", func(ctx context.Context) error {
		// go-tfe's Create and Update refuse this themselves; UpdateByID sends it.
		ws, err := c.client.Workspaces.Create(ctx, c.cfg.org, tfe.WorkspaceCreateOptions{Name: tfe.String(c.prefix + "-local"), ExecutionMode: tfe.String("local")})
		if err != nil {
			return err
		}
		var e expect
		e.eq("execution-mode of a workspace created local", ws.ExecutionMode, "local")
		e.that(ws.AgentPool == nil, "a workspace created local has agent pool %s", rel(ws.AgentPool))
		mark := c.rec.mark()
		_, err = c.client.Workspaces.UpdateByID(ctx, ws.ID, tfe.WorkspaceUpdateOptions{ExecutionMode: tfe.String("agent")})
		c.refused(&e, "agent mode for a workspace without a pool", mark, err, 422)
		again, err := c.client.Workspaces.ReadByID(ctx, ws.ID)
		if e.noErr("read back", err) {
			e.eq("execution-mode after the refusal", again.ExecutionMode, "local")
		}
		return e.err()
	})
}

func (c *checker) checkWorkspaceDeletes() {
	c.check("workspaces: delete by name", func(ctx context.Context) error {
		if err := need(len(c.fx.pageWorkspaces) == 3, "the workspaces of the pagination check"); err != nil {
			return err
		}
		ws := c.fx.pageWorkspaces[0]
		if err := c.client.Workspaces.Delete(ctx, c.cfg.org, ws.Name); err != nil {
			return err
		}
		_, err := c.client.Workspaces.ReadByID(ctx, ws.ID)
		if !errors.Is(err, tfe.ErrResourceNotFound) {
			return errors.New("read after delete: " + errString(err) + ", want ErrResourceNotFound")
		}
		return nil
	})
	c.check("workspaces: delete by id", func(ctx context.Context) error {
		if err := need(len(c.fx.pageWorkspaces) == 3, "the workspaces of the pagination check"); err != nil {
			return err
		}
		ws := c.fx.pageWorkspaces[1]
		if err := c.client.Workspaces.DeleteByID(ctx, ws.ID); err != nil {
			return err
		}
		_, err := c.client.Workspaces.Read(ctx, c.cfg.org, ws.Name)
		if !errors.Is(err, tfe.ErrResourceNotFound) {
			return errors.New("read after delete: " + errString(err) + ", want ErrResourceNotFound")
		}
		return nil
	})
}
