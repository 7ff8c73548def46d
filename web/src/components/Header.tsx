import { Link, NavLink, useNavigate } from 'react-router';
import { canAdminister, useApp } from '../app/context';

export function Header() {
  const { auth, me, workspace, selectWorkspace } = useApp();
  const navigate = useNavigate();
  const workspaces = me?.workspaces ?? [];

  const signOut = async () => {
    await auth.logout();
    navigate('/login');
  };

  return (
    <header className="topbar">
      <Link to="/" className="brand" aria-label="Houston home">
        <img src="/favicon.svg" alt="" width={24} height={24} />
        <span>Houston</span>
      </Link>
      {workspaces.length > 1 ? (
        <label className="workspace-switcher">
          <span className="sr-only">Workspace</span>
          <select value={workspace?.id ?? ''} onChange={(event) => selectWorkspace(event.target.value)}>
            {workspaces.map((candidate) => (
              <option key={candidate.id} value={candidate.id}>
                {candidate.name}
              </option>
            ))}
          </select>
        </label>
      ) : (
        workspace && <span className="workspace-name">{workspace.name}</span>
      )}
      <nav aria-label="Main" className="topnav">
        <NavLink to="/" end>
          Agents
        </NavLink>
        {canAdminister(workspace) && <NavLink to="/admin/members">Admin</NavLink>}
      </nav>
      <div className="user-menu">
        <span className="user-name" title={me?.user.email}>
          {me?.user.name || me?.user.email}
        </span>
        <button type="button" className="button secondary" onClick={() => void signOut()}>
          Sign out
        </button>
      </div>
    </header>
  );
}
