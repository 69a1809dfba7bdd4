"""Label your own keypoints in the browser, train on them, let the model pre-fill, correct.

    hourglass-label mice/ --skeleton mouse.yaml --video cage1.mp4 --video cage2.mp4
    hourglass-label mice/                      # the project again, where you left it
    hourglass-label hands/ --skeleton hand.yaml --image photos/   # photos as they are

The first call creates the project folder (a copy of the skeleton, docs/labeling.md), adds
the videos and picks --pick frames worth labelling (k-means on small frames, spread over the
videos); later calls open it as it is (more --video adds videos). Open the printed address:
click to place each joint, drag to move, keys for the rest (the page lists them); every change
is written to the project folder at once. "Train" runs `hourglass-train` on the labels (the
command is shown) and pre-fills the unlabelled frames with the new model; "Suggest frames" adds
the frames the model is least sure of; "Export" writes the labels as the custom JSON, COCO
keypoints and a CSV per video, and the model in the formats chosen. Served on 127.0.0.1 only
unless --host says otherwise; nothing is loaded from the internet. Ctrl-C stops it.
"""

import argparse

from keras_hourglass.cli import (
    add_logging,
    add_server_arguments,
    check_port,
    configure_logging,
    say,
)


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", help="the project folder (created when new)")
    parser.add_argument(
        "--skeleton",
        help="a new project's skeleton file (YAML or JSON: joint names, flip partners, limbs; "
        "as hourglass-train --skeleton takes)",
    )
    parser.add_argument(
        "--video", action="append", default=[], help="a video to label frames of (repeatable)"
    )
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        help="a photo (or a folder of photos) to label as it is (repeatable)",
    )
    parser.add_argument(
        "--individuals",
        type=int,
        default=1,
        help="a new project's individuals per frame (default: 1)",
    )
    parser.add_argument(
        "--pick",
        type=int,
        default=20,
        help="frames to pick when the project has none yet (default: 20; 0: none)",
    )
    parser.add_argument(
        "--method",
        choices=("kmeans", "uniform"),
        default="kmeans",
        help="how frames are picked: k-means on small frames (default) or evenly in time",
    )
    add_server_arguments(parser, 8001)
    add_logging(parser)
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.quiet, args.debug)
    check_port(parser, args)
    if args.pick < 0:
        parser.error(f"--pick must be 0 or more, got {args.pick}")
    return parser, args


def open_project(parser, args):
    """The project, created (with --skeleton) when the folder holds none; videos added, first
    frames picked. Any problem is one line naming the file."""
    import os

    from keras_hourglass.labelling.frames import VideoError, check_video
    from keras_hourglass.labelling.project import PROJECT_FILE, Project, ProjectError

    try:
        if os.path.isfile(os.path.join(args.project, PROJECT_FILE)):
            project = Project(args.project)
        elif args.skeleton:
            for video in args.video:  # before the folder is made: a bad video leaves nothing
                check_video(video)
            project = Project.create(args.project, args.skeleton, args.individuals)
            say(f"created the project {args.project} ({project.skeleton.name})")
        else:
            parser.error(
                f"{args.project}: no project there yet: give --skeleton FILE to create one"
            )
        if args.video:
            project.add_videos(args.video)
        if args.image:
            say(f"added {len(project.add_images(args.image))} photo(s)")
        if not project.frames and project.videos and args.pick:
            new = project.pick(args.pick, args.method)
            say(f"picked {len(new)} frames ({args.method})")
    except (ProjectError, VideoError) as error:
        parser.error(str(error))
    return project


def main(argv=None):
    parser, args = parse_args(argv)
    from keras_hourglass.commands.demo import listen

    project = open_project(parser, args)
    sock = listen(args.host, args.port)
    import uvicorn

    from keras_hourglass.labelling.app import make_labelling_app

    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    say(
        f"keras-hourglass labelling: {project.folder}, {len(project.frames)} frames, "
        f"{len(project.labels)} labelled"
    )
    print(f"Open http://{shown}:{port}/ in a browser (Ctrl-C stops)", flush=True)
    config = uvicorn.Config(make_labelling_app(project), log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    return 0
