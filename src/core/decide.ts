import type {BindAction, ServiceType} from '../protocol/types.js'
import {isBrowserBlocked} from './blocked-ports.js'
import {serviceForPort} from './service-types.js'

// Pure decisions. The daemon feeds them a view of the store and the kernel's socket table; they do no I/O
// themselves, so every rule here is testable with plain maps.

export interface Holder {
  pid: number | null
  pidStart: number | null
  instanceId: string | null
}

export interface LeaseView extends Holder {
  id: string
  port: number
  service: string
  requestedPort: number | null
}

export interface PortView {
  leaseOn(port: number): LeaseView | undefined
  isBound(port: number): boolean
  /** Something other than a listener holds the port (TIME_WAIT, a connection): not a fresh port to hand out. */
  otherwiseHeld?(port: number): boolean
}

export interface Limits {
  types: readonly ServiceType[]
  /** Never handed out: the daemon's own TCP port. */
  reserved: ReadonlySet<number>
  minPort: number
}

export function sameHolder(a: Holder, b: Holder): boolean {
  if (a.instanceId && b.instanceId && a.instanceId === b.instanceId) return true
  return a.pid !== null && a.pid === b.pid && a.pidStart === b.pidStart
}

function isAssignable(port: number, limits: Limits): boolean {
  return port >= limits.minPort && port <= 65535 && !isBrowserBlocked(port) && !limits.reserved.has(port)
}

function isFree(port: number, view: PortView, limits: Limits, taken?: ReadonlySet<number>): boolean {
  return isAssignable(port, limits) && !taken?.has(port) && !view.leaseOn(port) && !view.isBound(port) && !view.otherwiseHeld?.(port)
}

/** Where a moved bind may land: the rest of the requested port's range (wrapping), then above it outside every range. */
export function* remapCandidates(requested: number, types: readonly ServiceType[]): Generator<number> {
  const home = serviceForPort(types, requested)
  if (home) {
    for (let p = requested + 1; p <= home.range[1]; p++) yield p
    for (let p = home.range[0]; p < requested; p++) yield p
  }
  for (let p = Math.max(requested, home?.range[1] ?? requested) + 1; p <= 65535; p++) {
    if (!serviceForPort(types, p)) yield p
  }
}

/**
 * The type's ports in the order an allocation tries them: the asked port, then the one its project was given last
 * time it could not have it (`remembered`), then the ports after the asked one as a moved bind gets them
 * (`styxy run --port 8000` with 8000 taken gets 8001, not the type's first port) when it lies in the type's range
 * (or, given every type, in no range at all), then the type's preferred ports and its range.
 */
export function* allocationCandidates(type: ServiceType, preferred?: number, remembered?: number, types?: readonly ServiceType[]): Generator<number> {
  if (preferred !== undefined) {
    yield preferred
    if (remembered !== undefined) yield remembered
    if (preferred >= type.range[0] && preferred <= type.range[1]) {
      for (let p = preferred + 1; p <= type.range[1]; p++) yield p
      for (let p = type.range[0]; p < preferred; p++) yield p
    } else if (types && !serviceForPort(types, preferred)) {
      yield* remapCandidates(preferred, types)
    }
  }
  for (const p of type.preferredPorts) yield p
  for (let p = type.range[0]; p <= type.range[1]; p++) yield p
}

export function firstFree(candidates: Iterable<number>, view: PortView, limits: Limits, taken?: ReadonlySet<number>): number | undefined {
  for (const p of candidates) if (isFree(p, view, limits, taken)) return p
  return undefined
}

export function suggestPorts(type: ServiceType, count: number, view: PortView, limits: Limits): number[] {
  const out: number[] = []
  const seen = new Set<number>()
  for (const p of allocationCandidates(type)) {
    if (out.length >= count) break
    if (seen.has(p)) continue
    seen.add(p)
    if (isFree(p, view, limits)) out.push(p)
  }
  return out
}

export interface BindInput {
  holder: Holder
  requestedPort: number
  /** Ports the caller found in use on its own (EADDRINUSE) after an earlier answer. */
  taken: ReadonlySet<number>
  reassign: boolean
  /** The service inferred from the command line, used when the port is in no type's range. */
  inferredService: string
  /** This holder's earlier answer for the same requested port, if any. */
  prior: LeaseView | undefined
  /** The port a program in the same project got last time for this requested port (looked up only for a move). */
  remembered: () => number | undefined
}

export type BindDecision =
  | {action: 'allow'; port: number; service: string; lease: {reuse: LeaseView} | {create: true}; repeat: boolean}
  | {action: 'remap'; port: number; service: string; lease: {reuse: LeaseView} | {create: true}; repeat: boolean}
  | {action: 'deny'; port: number; service: string; reason: string; repeat: boolean}

export function decideBind(input: BindInput, view: PortView, limits: Limits): BindDecision {
  const {requestedPort: requested, taken, prior} = input
  const home = serviceForPort(limits.types, requested)
  const service = home?.name ?? input.inferredService

  // Same process, same port: the same answer for every socket (IPv4 and IPv6 alike). A retry (`taken` set)
  // always gets a fresh port: the earlier answer may be held by a listener the daemon could not see, or by
  // another thread of this very process, and repeating it would only fail again.
  if (prior && taken.size === 0) {
    const action: BindAction = prior.port === requested ? 'allow' : 'remap'
    return {action, port: prior.port, service: prior.service, lease: {reuse: prior}, repeat: true}
  }
  const leaseOnTarget = view.leaseOn(requested)
  const ownLease = leaseOnTarget && sameHolder(leaseOnTarget, input.holder) ? leaseOnTarget : undefined
  if (ownLease && !taken.has(requested)) {
    return {action: 'allow', port: requested, service: ownLease.service, lease: {reuse: ownLease}, repeat: false}
  }
  const conflict = taken.has(requested) || (leaseOnTarget !== undefined && !ownLease) || view.isBound(requested)
  // A taken earlier answer gets a new lease rather than moving the old one: the port may be held by this very
  // process (threads binding the same port), and a lease must never point away from a port its holder uses.
  const leaseOp = {create: true as const}
  if (!conflict) return {action: 'allow', port: requested, service, lease: leaseOp, repeat: false}
  if (!input.reassign) return {action: 'deny', port: requested, service, reason: 'port in use and reassignment is disabled', repeat: false}
  if (home?.singleton) {
    return {action: 'deny', port: requested, service, reason: `${home.name} is a single-instance type: use the running holder`, repeat: false}
  }
  // The project's own earlier port is checked as its requested port is: a lease or a listener keeps it from it,
  // its own predecessor's TIME_WAIT does not (a restarted server binds past it with SO_REUSEADDR; one that fails
  // comes back with the port in `taken`). Checked as a fresh port, every restart of a moved watch-mode server
  // that had answered a request jumped to the next port (3051, 3052, ...).
  const remembered = input.remembered()
  const port = remembered !== undefined && remembered !== requested && isAssignable(remembered, limits) && !taken.has(remembered)
    && !view.leaseOn(remembered) && !view.isBound(remembered)
    ? remembered
    : firstFree(remapCandidates(requested, limits.types), view, limits, taken)
  if (port === undefined) return {action: 'deny', port: requested, service, reason: 'no free port left to move to', repeat: false}
  return {action: 'remap', port, service, lease: leaseOp, repeat: false}
}
