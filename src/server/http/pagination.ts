// TFE's pagination: `page[number]` (from 1) and `page[size]` (default 20,
// at most 100) in the query, and in the answer `meta.pagination` (go-tfe's
// Pagination: current, previous and next page, total pages and count) with
// `links` to the first, previous, next and last page. go-tfe's list helpers
// walk pages by `next-page` until it is null.
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ServerContext } from '../context.ts';
import { parseBody } from './json-api.ts';

const pageQuery = z.looseObject({
  'page[number]': z.coerce.number().int().min(1).max(1_000_000).default(1),
  'page[size]': z.coerce.number().int().min(1).max(100).default(20),
});

export interface PageRequest {
  readonly number: number;
  readonly size: number;
}

/** The page a list request asks for; a bad number or size is 422 validation_failed. */
export function pageOf(request: FastifyRequest): PageRequest {
  const query = parseBody(pageQuery, request.query ?? {});
  return { number: query['page[number]'], size: query['page[size]'] };
}

export interface PaginationMeta {
  'current-page': number;
  'page-size': number;
  'prev-page': number | null;
  'next-page': number | null;
  'total-pages': number;
  'total-count': number;
}

export interface Paged<T> {
  items: T[];
  meta: { pagination: PaginationMeta };
  links: { self: string; first: string; prev: string | null; next: string | null; last: string };
}

/** TFE's meta and links for page `page` of `totalCount` items, the links made from the request's URL. */
export function pagination(ctx: ServerContext, request: FastifyRequest, page: PageRequest, totalCount: number): Omit<Paged<never>, 'items'> {
  const totalPages = Math.max(1, Math.ceil(totalCount / page.size));
  const link = (number: number): string => {
    const url = new URL(request.url, ctx.publicUrl || 'http://localhost');
    url.searchParams.set('page[number]', String(number));
    url.searchParams.set('page[size]', String(page.size));
    return `${ctx.publicUrl}${url.pathname}${url.search}`;
  };
  const prev = page.number > 1 ? Math.min(page.number - 1, totalPages) : null;
  const next = page.number < totalPages ? page.number + 1 : null;
  return {
    meta: {
      pagination: {
        'current-page': page.number,
        'page-size': page.size,
        'prev-page': prev,
        'next-page': next,
        'total-pages': totalPages,
        'total-count': totalCount,
      },
    },
    links: { self: link(page.number), first: link(1), prev: prev === null ? null : link(prev), next: next === null ? null : link(next), last: link(totalPages) },
  };
}

/** One page of `all` (already filtered and ordered), with TFE's meta and links made from the request's URL. */
export function paginate<T>(ctx: ServerContext, request: FastifyRequest, all: readonly T[], page: PageRequest = pageOf(request)): Paged<T> {
  const start = (page.number - 1) * page.size;
  return { items: all.slice(start, start + page.size), ...pagination(ctx, request, page, all.length) };
}

/** Whether the request names a page at all. */
export function asksForPage(request: FastifyRequest): boolean {
  const query = (request.query ?? {}) as Record<string, unknown>;
  return query['page[number]'] !== undefined || query['page[size]'] !== undefined;
}

/**
 * Every item as one page, for lists a TFE client reads without paging (the
 * `tofu` CLI reads only the first page of a workspace's outputs): the meta
 * says so, and the links point at this same request.
 */
export function wholeList<T>(ctx: ServerContext, request: FastifyRequest, all: readonly T[]): Paged<T> {
  const self = `${ctx.publicUrl}${request.url}`;
  return {
    items: [...all],
    meta: {
      pagination: { 'current-page': 1, 'page-size': all.length, 'prev-page': null, 'next-page': null, 'total-pages': 1, 'total-count': all.length },
    },
    links: { self, first: self, prev: null, next: null, last: self },
  };
}
