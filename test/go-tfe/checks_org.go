package main

// The client's handshake, organizations, agent pools, their tokens and agents.

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"

	tfe "github.com/hashicorp/go-tfe"
)

func (c *checker) checkClient() {
	c.check("client: ping answers with the API version", func(context.Context) error {
		var e expect
		ping, ok := c.rec.last(0, "GET", "/api/v2/ping")
		e.that(ok, "NewClient sent no GET /api/v2/ping")
		if ok {
			e.that(ping.Status >= 200 && ping.Status < 300, "GET /api/v2/ping answered %d, want 2xx", ping.Status)
		}
		version := c.client.RemoteAPIVersion()
		e.that(regexp.MustCompile(`^2\.\d+`).MatchString(version), "TFP-API-Version = %q, want 2.x", version)
		return e.err()
	})
}

func (c *checker) checkOrganizations() {
	c.check("organizations: list", func(ctx context.Context) error {
		list, err := c.client.Organizations.List(ctx, nil)
		if err != nil {
			return err
		}
		var e expect
		e.that(contains(ids(list.Items, func(o *tfe.Organization) string { return o.Name }), c.cfg.org), "organization %q not listed", c.cfg.org)
		e.that(list.Pagination != nil && list.CurrentPage == 1 && list.TotalCount >= 1, "meta.pagination = %+v, want current-page 1 and total-count >= 1", list.Pagination)
		return e.err()
	})
	c.check("organizations: read", func(ctx context.Context) error {
		org, err := c.client.Organizations.Read(ctx, c.cfg.org)
		if err != nil {
			return err
		}
		var e expect
		e.eq("name", org.Name, c.cfg.org)
		e.that(!org.CreatedAt.IsZero(), "created-at is missing")
		return e.err()
	})
	c.check("organizations: an unknown one is 404", func(ctx context.Context) error {
		_, err := c.client.Organizations.Read(ctx, c.prefix+"-no-such-org")
		if !errors.Is(err, tfe.ErrResourceNotFound) {
			return errors.New("got " + errString(err) + ", want ErrResourceNotFound")
		}
		return nil
	})
	c.check("organizations: entitlements", func(ctx context.Context) error {
		ent, err := c.client.Organizations.ReadEntitlements(ctx, c.cfg.org)
		if err != nil {
			return err
		}
		// What the CLI's cloud backend reads: remote operations (agents run
		// them) and state storage.
		var e expect
		e.that(ent.ID != "", "entitlement set has no id")
		e.eq("agents", ent.Agents, true)
		e.eq("operations", ent.Operations, true)
		e.eq("state-storage", ent.StateStorage, true)
		return e.err()
	})
}

func (c *checker) checkAgentPools() {
	c.check("agent pools: list", func(ctx context.Context) error {
		list, err := c.client.AgentPools.List(ctx, c.cfg.org, nil)
		if err != nil {
			return err
		}
		var e expect
		found := false
		for _, pool := range list.Items {
			if pool.ID == c.cfg.poolID {
				found = true
				e.that(pool.AgentCount >= 1, "agent-count of %s = %d, want >= 1 (an agent runs in it)", pool.ID, pool.AgentCount)
			}
		}
		e.that(found, "pool %s not listed", c.cfg.poolID)
		e.that(list.Pagination != nil && list.TotalCount == len(list.Items), "meta.pagination = %+v for %d pools", list.Pagination, len(list.Items))
		return e.err()
	})
	c.check("agent pools: read", func(ctx context.Context) error {
		pool, err := c.client.AgentPools.Read(ctx, c.cfg.poolID)
		if err != nil {
			return err
		}
		var e expect
		e.eq("id", pool.ID, c.cfg.poolID)
		e.that(pool.Name != "", "name is empty")
		e.eq("organization-scoped", pool.OrganizationScoped, true)
		e.that(pool.Organization != nil && pool.Organization.Name == c.cfg.org, "organization relationship = %s, want %s", rel(pool.Organization), c.cfg.org)
		e.that(!pool.CreatedAt.IsZero(), "created-at is missing")
		return e.err()
	})
	name := c.prefix + "-pool"
	c.check("agent pools: create", func(ctx context.Context) error {
		pool, err := c.client.AgentPools.Create(ctx, c.cfg.org, tfe.AgentPoolCreateOptions{Name: tfe.String(name), OrganizationScoped: tfe.Bool(true)})
		if err != nil {
			return err
		}
		c.fx.extraPoolID = pool.ID
		var e expect
		e.that(strings.HasPrefix(pool.ID, "apool-"), "id %q does not start with apool-", pool.ID)
		e.eq("name", pool.Name, name)
		e.eq("agent-count", pool.AgentCount, 0)
		return e.err()
	})
	c.check("agent pools: update", func(ctx context.Context) error {
		if err := need(c.fx.extraPoolID != "", "the created pool"); err != nil {
			return err
		}
		renamed := name + "-renamed"
		pool, err := c.client.AgentPools.Update(ctx, c.fx.extraPoolID, tfe.AgentPoolUpdateOptions{Name: tfe.String(renamed)})
		if err != nil {
			return err
		}
		var e expect
		e.eq("name in the answer", pool.Name, renamed)
		again, err := c.client.AgentPools.Read(ctx, c.fx.extraPoolID)
		if e.noErr("read after update", err) {
			e.eq("name read back", again.Name, renamed)
		}
		return e.err()
	})
	c.check("agent pools: list with q", func(ctx context.Context) error {
		if err := need(c.fx.extraPoolID != "", "the created pool"); err != nil {
			return err
		}
		list, err := c.client.AgentPools.List(ctx, c.cfg.org, &tfe.AgentPoolListOptions{Query: c.prefix})
		if err != nil {
			return err
		}
		var e expect
		e.eq("pools matching the query", ids(list.Items, func(p *tfe.AgentPool) string { return p.ID }), []string{c.fx.extraPoolID})
		return e.err()
	})
}

func (c *checker) checkAgentTokens() {
	var tokenID string
	description := c.prefix + " token"
	c.check("agent tokens: create", func(ctx context.Context) error {
		if err := need(c.fx.extraPoolID != "", "the created pool"); err != nil {
			return err
		}
		token, err := c.client.AgentTokens.Create(ctx, c.fx.extraPoolID, tfe.AgentTokenCreateOptions{Description: tfe.String(description)})
		if err != nil {
			return err
		}
		tokenID = token.ID
		var e expect
		e.that(strings.HasPrefix(token.ID, "at-"), "id %q does not start with at-", token.ID)
		e.that(token.Token != "", "the secret is missing from the creation answer")
		e.eq("description", token.Description, description)
		e.that(!token.CreatedAt.IsZero(), "created-at is missing")
		return e.err()
	})
	c.check("agent tokens: list", func(ctx context.Context) error {
		if err := need(tokenID != "", "the created token"); err != nil {
			return err
		}
		list, err := c.client.AgentTokens.List(ctx, c.fx.extraPoolID)
		if err != nil {
			return err
		}
		var e expect
		e.eq("tokens of the pool", ids(list.Items, func(t *tfe.AgentToken) string { return t.ID }), []string{tokenID})
		for _, token := range list.Items {
			e.eq("description", token.Description, description)
			e.eq("secret in a list", token.Token, "")
		}
		e.that(list.Pagination != nil && list.TotalCount == 1, "meta.pagination = %+v, want total-count 1", list.Pagination)
		return e.err()
	})
	c.check("agent tokens: read", func(ctx context.Context) error {
		if err := need(tokenID != "", "the created token"); err != nil {
			return err
		}
		token, err := c.client.AgentTokens.Read(ctx, tokenID)
		if err != nil {
			return err
		}
		var e expect
		e.eq("id", token.ID, tokenID)
		e.eq("description", token.Description, description)
		e.eq("secret on read", token.Token, "")
		return e.err()
	})
	c.check("agent tokens: delete", func(ctx context.Context) error {
		if err := need(tokenID != "", "the created token"); err != nil {
			return err
		}
		if err := c.client.AgentTokens.Delete(ctx, tokenID); err != nil {
			return err
		}
		// A deliberate difference from TFE (docs/api.md): Outpost revokes the
		// token and keeps it listed, with its revoked-at, for the audit trail.
		// go-tfe's AgentToken has no revoked-at, so the check is that it is
		// still there and shows no secret.
		var e expect
		read, err := c.client.AgentTokens.Read(ctx, tokenID)
		if e.noErr("read after delete", err) {
			e.eq("token secret after delete", read.Token, "")
		}
		list, err := c.client.AgentTokens.List(ctx, c.fx.extraPoolID)
		if e.noErr("list after delete", err) {
			e.eq("tokens listed", len(list.Items), 1)
		}
		return e.err()
	})
	c.check("agent pools: delete", func(ctx context.Context) error {
		if err := need(c.fx.extraPoolID != "", "the created pool"); err != nil {
			return err
		}
		if err := c.client.AgentPools.Delete(ctx, c.fx.extraPoolID); err != nil {
			return err
		}
		_, err := c.client.AgentPools.Read(ctx, c.fx.extraPoolID)
		if !errors.Is(err, tfe.ErrResourceNotFound) {
			return errors.New("read after delete: " + errString(err) + ", want ErrResourceNotFound")
		}
		return nil
	})
}

func (c *checker) checkAgents() {
	c.check("agents: list", func(ctx context.Context) error {
		list, err := c.client.Agents.List(ctx, c.cfg.poolID, nil)
		if err != nil {
			return err
		}
		var e expect
		e.that(len(list.Items) >= 1, "no agents in pool %s, which has a running one", c.cfg.poolID)
		for _, agent := range list.Items {
			e.that(strings.HasPrefix(agent.ID, "agent-"), "id %q does not start with agent-", agent.ID)
			e.that(agent.Name != "", "agent %s has no name", agent.ID)
			e.that(agent.Status == "idle" || agent.Status == "busy", "agent %s has status %q, want idle or busy", agent.ID, agent.Status)
			_, perr := time.Parse(time.RFC3339, agent.LastPingAt)
			e.that(perr == nil, "agent %s: last-ping-at %q is not a timestamp", agent.ID, agent.LastPingAt)
			if c.fx.agentID == "" {
				c.fx.agentID = agent.ID
				c.fx.agentName = agent.Name
			}
		}
		return e.err()
	})
	c.check("agents: read", func(ctx context.Context) error {
		if err := need(c.fx.agentID != "", "a listed agent"); err != nil {
			return err
		}
		agent, err := c.client.Agents.Read(ctx, c.fx.agentID)
		if err != nil {
			return err
		}
		var e expect
		e.eq("id", agent.ID, c.fx.agentID)
		e.eq("name", agent.Name, c.fx.agentName)
		return e.err()
	})
	c.check("agents: filter by last ping", func(ctx context.Context) error {
		if err := need(c.fx.agentID != "", "a listed agent"); err != nil {
			return err
		}
		var e expect
		recent, err := c.client.Agents.List(ctx, c.cfg.poolID, &tfe.AgentListOptions{LastPingSince: time.Now().Add(-time.Hour)})
		if e.noErr("pinged in the last hour", err) {
			e.that(contains(ids(recent.Items, func(a *tfe.Agent) string { return a.ID }), c.fx.agentID), "an agent that pings is not among those that pinged in the last hour")
		}
		future, err := c.client.Agents.List(ctx, c.cfg.poolID, &tfe.AgentListOptions{LastPingSince: time.Now().Add(time.Hour)})
		if e.noErr("pinged after an hour from now", err) {
			e.eq("agents that pinged after an hour from now", len(future.Items), 0)
		}
		return e.err()
	})
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
