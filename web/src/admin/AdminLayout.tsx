import { NavLink, Outlet } from 'react-router';
import { canAdminister, useApp } from '../app/context';
import { Alert } from '../components/Alert';

const TABS = [
  ['members', 'Members'],
  ['invitations', 'Invitations'],
  ['access', 'Agent access'],
  ['agents', 'Agents'],
  ['audit', 'Audit log'],
  ['usage', 'Usage'],
] as const;

export function AdminLayout() {
  const { workspace, me } = useApp();
  if (!me) {
    return <main className="page" id="main"><p role="status">Loading…</p></main>;
  }
  if (!canAdminister(workspace)) {
    return (
      <main className="page" id="main">
        <h1>Administration</h1>
        <Alert>Only owners and admins of {workspace?.name ?? 'this workspace'} can open these pages.</Alert>
      </main>
    );
  }
  return (
    <main className="page admin" id="main">
      <h1>Administration · {workspace?.name}</h1>
      <nav aria-label="Administration" className="tabs">
        {TABS.map(([path, label]) => (
          <NavLink key={path} to={`/admin/${path}`}>
            {label}
          </NavLink>
        ))}
      </nav>
      <Outlet />
    </main>
  );
}
